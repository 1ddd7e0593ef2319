import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverVM

extension Fabric {
    /// Removes everything the topology owns — found in the kernel (link group, namespace tags)
    /// and the journal's pending namespaces — with one request for all links.
    public func destroy(topology: String) throws -> ApplyResult {
        let start = Date()
        let lock = try TopologyLock(topology)
        defer { withExtendedLifetime(lock) {} }
        let names = KernelNames(topology)
        var result = ApplyResult(plan: Plan(operations: [], conflicts: []))
        // Guests first: their taps go with them.
        let vmRoot = "\(VMLauncher.runRoot)/\(topology)"
        let guests = ((try? FileManager.default.contentsOfDirectory(atPath: vmRoot)) ?? []).map { "\(vmRoot)/\($0)" }
        result.deleted += try Fabric.stopGuests(guests)
        try? FileManager.default.removeItem(atPath: vmRoot)
        let owned = try handle.links(statistics: false).filter { $0.group == names.group }
        if !owned.isEmpty {
            // Every tc block the kernel binds (each HTB class has one) is also an entry in one
            // system-wide list that each bind and unbind walks from its newest entry
            // (flow_indr_dev_setup_offload). Taking the IFBs' trees down newest first, before the
            // ports' hooks, keeps every walk short; left to the group delete, the ports' unbinds
            // and then the oldest trees' would walk thousands of entries each (~90 ms at 1000
            // VNICs). Failures do not matter here: the group delete takes whatever is left.
            let ifbs = owned.filter { $0.kind == IFB.kind }.sorted { $0.index > $1.index }
            _ = handle.socket.execute(ifbs.map { QdiscRequest.delete(ifindex: $0.index, device: $0.name, handle: ShapingPlan.root, parent: .root) })
            try handle.deleteLinks(group: names.group)
            result.deleted += owned.count
        }
        // Rules after the links, so no VNIC is ever up without them; a foreign table of the same
        // name is left alone.
        do {
            if try firewall.remove(table: names.firewallTable, ownerTag: names.tagPrefix) { result.deleted += 1 }
        } catch is ForeignTableError {}
        result.phases.append(("delete links by group (one request) and rules", Date().timeIntervalSince(start) * 1000))
        let pending = Set(Journal.load(topology)?.pendingNamespaces ?? [])
        let candidates = NetworkNamespace.listNamed().filter { $0.hasPrefix(topology + "-") }
        let opened = try NetlinkHandle.openEach(namespaces: candidates.map(NetworkNamespace.named))
        // Which are ours: a tagged lo, or (not a usable namespace) the journal says so.
        var ours: [String] = []
        for (name, handle) in zip(candidates, opened) {
            let tagged = try (try? handle.get()).map { names.isOwnHost(links: try $0.links(statistics: false)) } ?? false
            if tagged || pending.contains(name) { ours.append(name) }
        }
        // The sockets keep every namespace alive until all are unmounted: the kernel then frees
        // them together, in one batch of its cleanup work, instead of one at a time beside the
        // unmounts.
        func closeAll() { for h in opened { (try? h.get())?.socket.close() } }
        defer { closeAll() }
        for name in ours {
            try NetworkNamespace.delete(named: name)
            result.deleted += 1
        }
        closeAll()
        Journal.remove(topology)
        lock.removeFile()
        result.milliseconds = Date().timeIntervalSince(start) * 1000
        result.phases.append(("namespaces", result.milliseconds - result.phases[0].1))
        return result
    }
}
