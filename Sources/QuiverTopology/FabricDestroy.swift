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
        // The namespaces are found first (reading each one's lo needs the lock the link deletion
        // holds) and unmounted on a thread of their own while the links go. The sockets keep every
        // namespace alive until all are unmounted: the kernel then frees them together, in one
        // batch of its cleanup work, once they are closed on the way out.
        let hosts = try Fabric.ownedNamespaces(of: names)
        defer { hosts.closeAll() }
        var mark = Date()
        result.phases.append(("find namespaces", mark.timeIntervalSince(start) * 1000))
        let unmounting = Background { [ours = hosts.ours] in
            for name in ours { try NetworkNamespace.delete(named: name) }
        }
        // Never return, and give up the lock, while it still unmounts: an apply could be making
        // namespaces of the same names by then.
        defer { _ = unmounting.wait() }
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
        result.phases.append(("delete links by group (one request) and rules, unmount namespaces", Date().timeIntervalSince(mark) * 1000))
        mark = Date()
        try unmounting.wait().get()
        result.deleted += hosts.ours.count
        Journal.remove(topology)
        lock.removeFile()
        result.phases.append(("rest of the unmounts", Date().timeIntervalSince(mark) * 1000))
        result.milliseconds = Date().timeIntervalSince(start) * 1000
        return result
    }

    /// The topology's namespaces: named with its prefix and holding a lo with its host tag, or
    /// (not a usable namespace) listed by the journal as being made; with the sockets opened in
    /// them, which keep each alive until the caller closes them all.
    struct OwnedNamespaces {
        var ours: [String] = []
        var sockets: [NetlinkHandle] = []
        func closeAll() { for h in sockets { h.socket.close() } }
    }

    static func ownedNamespaces(of names: KernelNames) throws -> OwnedNamespaces {
        let pending = Set(Journal.load(names.topology)?.pendingNamespaces ?? [])
        let candidates = NetworkNamespace.listNamed().filter { $0.hasPrefix(names.topology + "-") }
        let opened = try NetlinkHandle.openEach(namespaces: candidates.map(NetworkNamespace.named))
        var found = OwnedNamespaces()
        for (name, handle) in zip(candidates, opened) {
            let handle = try? handle.get()
            if let handle { found.sockets.append(handle) }
            let tagged = try handle.map { names.isOwnHost(links: try $0.links(statistics: false)) } ?? false
            if tagged || pending.contains(name) { found.ours.append(name) }
        }
        return found
    }
}
