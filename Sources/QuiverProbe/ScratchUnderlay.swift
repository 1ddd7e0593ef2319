import Foundation
import QuiverKernel
import QuiverNetlink

/// Several hosts simulated on one machine, for tests and benchmarks of multi-node fabrics: each
/// node a network namespace with an underlay interface `u0` (192.0.2.N/24, or 2001:db8::N/64 —
/// documentation ranges; MAC 02:c0:00:02:00:NN), all plugged into a bridge `ub` in one more namespace, and
/// optionally an attacker on the same underlay (192.0.2.250). Nothing else is reachable from
/// them. ``tearDown()`` deletes every namespace it made.
public final class ScratchUnderlay: @unchecked Sendable {
    public struct Node: Sendable {
        public var namespace: String
        public var address: IPAddress
        public var mac: MACAddress
    }

    public let id: String
    public private(set) var nodes: [Node] = []
    /// The underlay's own namespace (its bridge `ub`, ports `pN`).
    public let underlay: String
    public private(set) var attacker: Node?

    /// `nodes` namespaces `ID-n1`…; `attacker`: one more, `ID-x`, at 192.0.2.250. `mtu`: the
    /// underlay interfaces' MTU.
    public init(nodes count: Int, attacker withAttacker: Bool = false, mtu: UInt32 = 1500, ipv6: Bool = false, prefix: String = "qu") throws {
        id = prefix + "-" + String(UUID().uuidString.prefix(6)).lowercased()
        underlay = id + "-u"
        let u = try NetworkNamespace.create(named: underlay)
        do {
            let uh = try NetlinkHandle(namespace: u)
            try uh.addLink("ub", Bridge(stp: false), LinkSettings(up: true, mtu: mtu))
            let ub = try uh.link(named: "ub").index
            func plug(_ name: String, _ i: Int, _ address: IPAddress) throws -> Node {
                let ns = try NetworkNamespace.create(named: name)
                let fd = try ns.open()
                defer { try? fd.close() }
                let mac = try MACAddress(String(format: "02:c0:00:02:00:%02x", i))
                let veth = Veth(peer: "u0", peerSettings: LinkSettings(up: true, mtu: mtu, mac: mac, namespace: .fd(fd.rawValue)))
                try uh.addLink(try InterfaceName(validating: "p\(i)"), veth, LinkSettings(up: true, mtu: mtu, masterIndex: ub))
                let h = try NetlinkHandle(namespace: ns)
                if let up = veth.peerFollowUp { try h.perform(up) }
                try h.setLink("lo", LinkSettings(up: true))
                try h.addAddress(try IPPrefix(address: address, length: address.isV4 ? 24 : 64), to: "u0")
                return Node(namespace: name, address: address, mac: mac)
            }
            func address(_ i: UInt8) throws -> IPAddress { ipv6 ? try IPAddress("2001:db8::\(String(i, radix: 16))") : IPAddress(192, 0, 2, i) }
            for i in 1...count { nodes.append(try plug("\(id)-n\(i)", i, try address(UInt8(i)))) }
            if withAttacker { attacker = try plug("\(id)-x", 250, try address(250)) }
        } catch {
            tearDown()
            throw error
        }
    }

    /// A VXLAN packet as an attacker on the underlay would send it to `node`: UDP 4789 from the
    /// attacker's address, VNI `vni` (`reserved`: the byte after it), carrying `inner`.
    public func forgedVXLAN(to node: Node, vni: UInt32, reserved: UInt8 = 0, inner: [UInt8]) -> [UInt8] {
        let a = attacker ?? nodes[0]
        let header: [UInt8] = [0x08, 0, 0, 0, UInt8(vni >> 16 & 0xFF), UInt8(vni >> 8 & 0xFF), UInt8(vni & 0xFF), reserved]
        return Frames.udp4(dstMAC: node.mac, srcMAC: a.mac, src: a.address, dst: node.address, srcPort: 47000, dstPort: 4789, header + inner)
    }

    /// Every namespace it made.
    public var namespaceNames: [String] {
        NetworkNamespace.listNamed().filter { $0.hasPrefix(id + "-") }
    }

    /// Deletes every namespace it made. Returns the names it could not delete.
    @discardableResult
    public func tearDown() -> [String] { deleteNamespaces(namespaceNames) }
}
