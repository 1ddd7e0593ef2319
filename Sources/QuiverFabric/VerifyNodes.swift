import Foundation
import QuiverNetlink
import QuiverProtection
import QuiverTopology

extension Fabric {
    /// `verify` of a multi-node file. Each row runs from its `from` host's node, with that node's
    /// counters. `node` (this host's node): only the rows from its hosts. Without it, every row
    /// whose node is applied on this host — each node's fabric found through its record (the
    /// tests' simulation: nodes as namespaces of one host); a row from a node not applied here
    /// fails and says to run it there.
    public func verify(_ t: Topology, node: String?, progress: ((VerifyRow) -> Void)? = nil) throws -> [VerifyRow] {
        guard !t.nodes.isEmpty else { return try verify(t, progress: progress) }
        let name = try TopologyName(validating: t.name)
        // Each node's fabric: this one for `node`, else the namespace its record names.
        var fabrics: [String: Fabric] = [:]
        for n in t.nodes {
            if n.name == node { fabrics[n.name] = self; continue }
            guard node == nil, let j = try Journal.load(name, node: n.name) else { continue }
            fabrics[n.name] = j.fabricNamespace == fabricNamespace?.name ? self : try Fabric(fabric: j.fabricNamespace.map(NetworkNamespace.named))
        }
        // Endpoints resolve against every node's part (the other side of a row may be remote).
        var all: DesiredFabric?
        for n in t.nodes {
            let placed = t.placed(on: n.name)
            let d = try fabrics[n.name].map { try $0.desired(placed) } ?? DesiredFabric(placed)
            if all == nil { all = d } else {
                all!.vnics += d.vnics
                all!.vms += d.vms
                all!.capGroups += d.capGroups
                all!.namespaces += d.namespaces
            }
        }
        var verifiers: [String: Verifier] = [:]
        var rows: [VerifyRow] = []
        for (i, e) in t.expectations.enumerated() {
            guard let from = e.endpoints.first, let fromNode = t.nodeOf(host: from.host) else { continue }
            if let node, fromNode != node { continue }
            guard let f = fabrics[fromNode], let desired = all else {
                let row = VerifyRow(index: i + 1, kind: "", from: from.description, to: e.endpoints.dropFirst().first?.description ?? "", passed: false,
                                    detail: "\(from.host) is on node \(fromNode), which is not applied on this host: run `quiver verify \(t.file) --node \(fromNode)` there",
                                    location: e.location.description)
                progress?(row)
                rows.append(row)
                continue
            }
            var v = verifiers[fromNode] ?? Verifier(t: t, desired: desired, names: KernelNames(t.name, node: fromNode), handle: f.handle, firewall: f.firewall)
            let row = v.row(i + 1, e)
            verifiers[fromNode] = v
            progress?(row)
            rows.append(row)
        }
        return rows
    }
}
