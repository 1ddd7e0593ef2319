import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology
import QuiverVM

extension Fabric {
    /// ``destroy(topology:)`` for a name given as text: validated first (a name never becomes a
    /// path before it is one).
    public func destroy(topology: String, node: String? = nil) throws -> ApplyResult {
        try destroy(topology: try TopologyName(validating: topology), node: try node.map { try ObjectName(validating: $0).rawValue })
    }

    /// Removes everything the topology owns — found in the kernel (its tagged links and
    /// namespaces) and in the journal (what an interrupted apply was making) — with one request
    /// for all links when every link in the topology's link group is its own; when the group
    /// also holds a link that is not (someone put one there), the topology's links are deleted
    /// by name and that one is left alone.
    ///
    /// `node`: on a node of a multi-node file, only what that node made (its tags say so) —
    /// and of the guests only its own, should nodes share this host.
    public func destroy(topology: TopologyName, node: String? = nil) throws -> ApplyResult {
        let lock = try TopologyLock(topology)
        defer { withExtendedLifetime(lock) {} }
        do {
            return try destroyLocked(topology, node: node, lock: lock)
        } catch {
            // A destroy refused outright leaves not even a lock file behind.
            if lock.created, (try? Journal.load(topology, node: node)) == nil { lock.removeFile() }
            throw error
        }
    }

    /// The guests (by host) a destroy stops: all of the topology's, or on a node the ones its
    /// record names — without a record, those no other node's record claims.
    static func guestHosts(_ topology: TopologyName, node: String?, journal: Journal?) throws -> [ObjectName] {
        let all = try GuestDirectory.hosts(topology: topology)
        guard node != nil else { return all }
        if let mine = journal?.guests { return all.filter { mine.contains($0.rawValue) } }
        let others = Set(try Journal.nodes(of: topology).filter { $0.node != node }.flatMap { $0.guests ?? [] })
        return all.filter { !others.contains($0.rawValue) }
    }

    func destroyLocked(_ topology: TopologyName, node: String?, lock: TopologyLock) throws -> ApplyResult {
        let start = Date()
        let names = KernelNames(topology.rawValue, node: node)
        let journal = try Journal.load(topology, node: node)
        let pendingLinks = Set(journal?.pendingLinks ?? [])
        var result = ApplyResult(plan: Plan(steps: [], conflicts: []))
        // Guests first: their taps go with them.
        let guestHosts = try Fabric.guestHosts(topology, node: node, journal: journal)
        let guests = guestHosts.map { GuestDirectory.path(topology: topology, host: $0) }
        result.deleted += try Fabric.stopGuests(guests)
        try GuestDirectory.removeTopology(topology)
        // DHCP servers before their namespaces.
        for d in DHCPServer.directories(topology: topology) {
            if try DHCPServer.stop(directory: d, namespace: DHCPServer.namespace(ofDirectory: d, topology: topology.rawValue) ?? "") { result.deleted += 1 }
        }
        // Then what outlives them: overlays, seeds, UEFI variables.
        for h in GuestState.hosts(topology: topology) where node == nil || guestHosts.contains(h) {
            try GuestState.remove(GuestState.path(topology: topology, host: h))
        }
        // The namespaces are found first (reading each one's lo needs the lock the link deletion
        // holds) and unmounted on a thread of their own while the links go. The sockets keep every
        // namespace alive until all are unmounted: the kernel then frees them together, in one
        // batch of its cleanup work, once they are closed on the way out.
        let hosts = try Fabric.ownedNamespaces(of: names, pending: Set(journal?.pendingNamespaces ?? []))
        defer { hosts.closeAll() }
        var mark = Date()
        result.phases.append(("find namespaces", mark.timeIntervalSince(start) * 1000))
        let unmounting = Background { [ours = hosts.ours] in
            for name in ours { try NetworkNamespace.delete(named: name) }
        }
        // Never return, and give up the lock, while it still unmounts: an apply could be making
        // namespaces of the same names by then.
        defer { _ = unmounting.wait() }
        let inGroup = try handle.links(statistics: false).filter { $0.group == names.group }
        let owned = inGroup.filter { names.owns($0, pending: pendingLinks) }
        if !owned.isEmpty {
            // Every tc block the kernel binds (each HTB class has one) is also an entry in one
            // system-wide list that each bind and unbind walks from its newest entry
            // (flow_indr_dev_setup_offload). Taking the IFBs' trees down newest first, before the
            // ports' hooks, keeps every walk short; left to the group delete, the ports' unbinds
            // and then the oldest trees' would walk thousands of entries each (BENCHMARKS.md).
            // Failures do not matter here: the group delete takes whatever is left.
            let ifbs = owned.filter { $0.kind == IFB.kind }.sorted { $0.index > $1.index }
            _ = handle.socket.execute(ifbs.map { QdiscRequest.delete(ifindex: $0.index, device: $0.name, handle: ShapingPlan.root, parent: .root) })
            if owned.count == inGroup.count {
                try handle.deleteLinks(group: names.group)
            } else {
                // The group holds links that are not the topology's: only its own go, one by one.
                try handle.perform(try owned.map { LinkRequest.delete(try InterfaceName(validating: $0.name)) })
            }
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
        try Journal.remove(topology, node: node)
        if try Journal.nodes(of: topology).isEmpty { lock.removeFile() }
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

    static func ownedNamespaces(of names: KernelNames, pending: Set<String>) throws -> OwnedNamespaces {
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
