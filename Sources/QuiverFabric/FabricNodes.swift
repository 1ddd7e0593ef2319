import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverTopology

/// A node of a multi-node file could not be placed on this host.
public struct NodeError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message + "; nothing was changed" }
}

extension Fabric {
    /// The node of `t` this host is: `node` when given (it must be one of the file's), else the one
    /// whose underlay address is an address of the fabric namespace — exactly one must be.
    public func localNode(of t: Topology, given node: String?) throws -> String? {
        guard !t.nodes.isEmpty else {
            if let node { throw NodeError(message: "--node \(InvalidValue.quoted(node)): \(t.file) has no `nodes:`") }
            return nil
        }
        if let node {
            guard t.node(named: node) != nil else {
                throw NodeError(message: "--node \(InvalidValue.quoted(node)): \(t.file) has no such node (its nodes: \(t.nodes.map(\.name).joined(separator: ", ")))")
            }
            return node
        }
        let mine = Set(try handle.addresses().map(\.prefix.address))
        let found = t.nodes.filter { mine.contains($0.underlay) }
        guard found.count == 1 else {
            throw NodeError(message: found.isEmpty
                ? "no node of \(t.file) has an underlay address of this host (\(t.nodes.map { "\($0.name) \($0.underlay)" }.joined(separator: ", "))): say which with --node"
                : "several nodes' underlay addresses are this host's (\(found.map(\.name).joined(separator: ", "))): say which with --node")
        }
        return found[0].name
    }

    /// The topology as this host builds it: placed on its node (when the file has `nodes:`).
    public func placed(_ t: Topology, node: String?) throws -> Topology {
        guard t.node == nil, let n = try localNode(of: t, given: node) else { return t }
        return t.placed(on: n)
    }

    /// The MTU of the link holding a placed topology's underlay address (1500 when not placed);
    /// a file asking for more than fits in it, less the VXLAN overhead, is refused at its key.
    func underlayMTU(_ t: Topology) throws -> UInt32 {
        guard let node = t.node, let me = t.node(named: node) else { return 1500 }
        guard let a = try handle.addresses().first(where: { $0.prefix.address == me.underlay }) else {
            throw NodeError(message: "node \(node): its underlay \(me.underlay) is not an address of the "
                            + (fabricNamespace.map { "network namespace \($0.name ?? "\($0)")" } ?? "host") + " — add it to the underlay interface, or give the node's own address")
        }
        let mtu = try handle.links(statistics: false).first { $0.index == a.linkIndex }?.mtu ?? 1500
        let fits = mtu - Topology.vxlanOverhead(me.underlay)
        let problems = t.mtuProblems(fits: fits, underlayMTU: mtu)
        if !problems.isEmpty { throw TopologyErrors(capping: problems) }
        return mtu
    }

    /// What the kernel should hold for `t`, on this host.
    func desired(_ t: Topology) throws -> DesiredFabric {
        try DesiredFabric(t, underlayMTU: try underlayMTU(t))
    }
}
