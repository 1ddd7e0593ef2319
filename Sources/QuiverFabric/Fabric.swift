import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology
import QuiverVM

/// What an apply or destroy did.
public struct ApplyResult: @unchecked Sendable {
    public var plan: Plan
    public var created = 0
    public var changed = 0
    public var deleted = 0
    public var milliseconds = 0.0
    /// Where the time went: (phase, milliseconds), in order.
    public var phases: [(String, Double)] = []
    public var isNoOp: Bool { created == 0 && changed == 0 && deleted == 0 }

    public var summary: String {
        isNoOp ? String(format: "no changes (%.0f ms)", milliseconds)
            : String(format: "created %d, changed %d, deleted %d in %.0f ms", created, changed, deleted, milliseconds)
    }
}

/// Brings topologies up and down. The fabric (switches, host-side VNIC ends, IFBs) lives in
/// `fabric` — the host namespace by default, or a namespace (tests and benchmarks use one they
/// own); each host is a named namespace.
public struct Fabric: Sendable {
    public let fabricNamespace: NetworkNamespace?
    public let handle: NetlinkHandle
    /// nftables (isolation and protection) in the same namespace.
    public let firewall: Firewall

    public init(fabric: NetworkNamespace? = nil) throws {
        fabricNamespace = fabric
        handle = try NetlinkHandle(namespace: fabric)
        firewall = try Firewall(namespace: fabric)
        Fabric.raiseDescriptorLimit()
    }

    /// Computes the plan without changing anything.
    public func plan(_ t: Topology) throws -> (Plan, DesiredFabric, CurrentFabric, [String: NetlinkHandle]) {
        try plan(t, desired: DesiredFabric(t), onFabricLinks: nil)
    }

    /// `onFabricLinks` runs as soon as the fabric's links are read, before the hosts are.
    func plan(_ t: Topology, desired: DesiredFabric, onFabricLinks: (([Link]) -> Void)?)
        throws -> (Plan, DesiredFabric, CurrentFabric, [String: NetlinkHandle]) {
        let journal = try Journal.load(try TopologyName(validating: t.name))
        let (current, handles) = try CurrentFabric.read(topology: t.name, wanted: desired.namespaces.map(\.name), fabric: handle,
                                                        firewall: firewall, onFabricLinks: onFabricLinks)
        return (Planner.plan(current: current, desired: desired, pendingNamespaces: Set(journal?.pendingNamespaces ?? []),
                             pendingLinks: Set(journal?.pendingLinks ?? [])), desired, current, handles)
    }

    /// Validates nothing (the topology is already valid), plans, and executes the plan.
    /// `progress` is called with (done, total) as operations complete.
    ///
    /// Conflicts stop it before anything changes (``ConflictList``). An apply that fails once it
    /// has begun to change things removes what that same run created — guests it started, links
    /// and namespaces it made, the rules where there were none — and throws ``ApplyFailure``,
    /// which says what it removed and what stays. What stays (changes to objects that were there
    /// before, or anything the undo could not remove) is tagged or journaled, so the next apply
    /// or destroy converges from it.
    public func apply(_ t: Topology, dryRun: Bool = false, progress: ((Int, Int) -> Void)? = nil) throws -> ApplyResult {
        let name = try TopologyName(validating: t.name)
        let lock = try TopologyLock(name)
        defer { withExtendedLifetime(lock) {} }
        let undo = ApplyUndo()
        do {
            let r = try applyLocked(t, dryRun: dryRun, undo: undo, progress: progress)
            if dryRun && lock.created { lock.removeFile() }
            return r
        } catch {
            guard undo.executing else {
                // Refused before any change: not even a lock file stays behind.
                if lock.created { lock.removeFile() }
                throw error
            }
            throw rollBack(undo, after: error, topology: name, lock: lock)
        }
    }

    /// `apply` with the topology's lock held; what it makes is recorded in `undo` as it goes.
    func applyLocked(_ t: Topology, dryRun: Bool, undo: ApplyUndo, progress: ((Int, Int) -> Void)?) throws -> ApplyResult {
        let start = Date()
        let topologyName = try TopologyName(validating: t.name)
        var mark = Date()
        var phases: [(String, Double)] = []
        func phase(_ name: String) {
            phases.append((name, Date().timeIntervalSince(mark) * 1000))
            mark = Date()
        }
        // When every fabric link is already there (a re-apply), the caps' state (every qdisc, each
        // IFB's classes and filters) is read on a thread of its own while the hosts are read; if
        // the plan then changes no fabric link, the shaper compares against it instead of dumping
        // it all again.
        let wanted = DesiredFabric(t)
        var capsRead: Background<ShapingState>?
        let (plan, desired, current, existingHandles) = try plan(t, desired: wanted) { [handle] links in
            guard !dryRun, !wanted.capGroups.isEmpty else { return }
            let names = Set(links.map(\.name))
            guard wanted.fabricLinkNames.allSatisfy(names.contains) else { return }
            capsRead = Background { try Shaper(handle: handle).read(wanted.capGroups, links: links) }
        }
        defer { _ = capsRead?.wait() }
        phase("read kernel state and plan")
        var result = ApplyResult(plan: plan)
        guard plan.conflicts.isEmpty else { throw ConflictList(conflicts: plan.conflicts) }
        // Host links under macvtaps are the operator's: they must be there before anything changes.
        let missing = desired.vms.flatMap { vm in
            vm.taps.filter { d in !d.overSwitch && !current.links.contains { $0.name == d.bridge } }.map { (vm.host, $0) }
        }
        if let (host, d) = missing.first {
            throw MissingLowerLink(host: host, link: d.bridge, fabric: fabricNamespace.map { "network namespace \($0.name ?? "\($0)")" } ?? "host namespace")
        }
        if dryRun { return result }
        undo.executing = true

        // Rules whose every MAC is known go in first, on their own thread: nftables commits
        // under its own lock, not RTNL, so this overlaps the namespace work below; it is waited
        // for before any VNIC is created, so none is ever up without its rules.
        var early: Background<Bool>?
        if plan.operations.contains(where: { if case .installProtection = $0 { return true }; return false }) {
            let macs = current.randomMACs(of: desired)
            if case .absent = current.firewall { undo.rulesMade = true }
            if let r = desired.ruleset(macs: macs) { early = Background { [firewall] in try firewall.install(r) } }
        }
        defer { _ = early?.wait() }

        let record = try Journal.load(topologyName)
        undo.hadRecord = record != nil
        var journal = record ?? Journal(topology: topologyName)
        journal.file = URL(fileURLWithPath: t.file).standardizedFileURL.path
        var handles = existingHandles
        let ops = plan.operations
        var done = 0
        func tick(_ n: Int) { done += n; progress?(done, ops.count) }
        func count(_ o: Operation) {
            switch o.verb { case .create: result.created += 1; case .change: result.changed += 1; case .delete: result.deleted += 1 }
        }

        // 1. Guests the file dropped or changed, caps of tenants that are gone, then owned links
        //    and namespaces the file dropped.
        let stopping = ops.compactMap { if case .stopVM(let h) = $0 { return GuestDirectory.path(topology: t.name, host: h) } else { return nil } }
        if !stopping.isEmpty {
            result.deleted += try Fabric.stopGuests(stopping)
            tick(stopping.count)
        }
        for case .removeCaps(let tenant) in ops {
            try removeCaps(topology: t.name, tenant: tenant, current: current)
            result.deleted += 1
            tick(1)
        }
        let deletions = ops.compactMap { if case .deleteLink(let l) = $0 { return l } else { return nil } }
        if !deletions.isEmpty {
            let macvtaps = current.links.filter { l in
                if case .macvtap? = l.data { return deletions.contains(l.name) } else { return false }
            }
            try deleteMacvtaps(macvtaps, bridges: current.bridgeIndexes)
            let rest = deletions.filter { d in !macvtaps.contains { $0.name == d } }
            try handle.performLinks(try rest.map { LinkRequest.delete(try InterfaceName(validating: $0)) })
            result.deleted += deletions.count
            tick(deletions.count)
        }
        for case .deleteNamespace(let n) in ops {
            handles[n] = nil
            try NetworkNamespace.delete(named: n)
            result.deleted += 1
            tick(1)
        }

        // Links of the topology found untagged (an interrupted apply) or with a stale tag.
        let retags = try ops.compactMap { o -> NetlinkRequest? in
            guard case .tagLink(let l, let tag) = o else { return nil }
            return LinkRequest.change(try InterfaceName(validating: l), LinkSettings(alias: tag))
        }
        if !retags.isEmpty {
            try handle.performLinks(retags)
            result.changed += retags.count
            tick(retags.count)
        }

        phase("deletions")
        // 2. The journal first — every namespace and fabric link this apply is about to make, so
        //    that one left untagged by a crash is still provably the topology's — then the
        //    namespaces, all made on a thread of their own, while the switches and then the VNICs
        //    are made here: each VNIC as soon as its namespace exists (step 3).
        let newNamespaces = ops.compactMap { if case .createNamespace(let n) = $0 { return n } else { return nil } }
        let tags = Dictionary(desired.namespaces.map { ($0.name, $0.tag) }, uniquingKeysWith: { a, _ in a })
        let bridges = ops.compactMap { if case .createBridge(let b) = $0 { return b } else { return nil } }
        // The tenants' IFBs go with the switches: the caps then find them, and read the fabric once.
        let cappedTenants = Set(ops.compactMap { if case .applyCaps(let t) = $0 { return t } else { return nil } })
        let cappedGroups = desired.capGroups.filter { cappedTenants.contains($0.name) }
        let ifbs = Shaper(handle: handle).ifbRequests(cappedGroups, links: current.links)
        let existingLinks = Set(current.links.map(\.name))
        let startingVMs = Set(ops.compactMap { if case .startVM(let h) = $0 { return h } else { return nil } })
        let newLinks = bridges.map(\.name)
            + ops.compactMap { if case .createVNIC(let v) = $0 { return v.hostDevice } else { return nil } }
            + cappedGroups.flatMap { [$0.ifbFrom.rawValue, $0.ifbTo.rawValue] }.filter { !existingLinks.contains($0) }
            + desired.vms.filter { startingVMs.contains($0.host) }.flatMap { $0.taps.filter(\.macvtap).map(\.name) }
        undo.links = newLinks
        if !newNamespaces.isEmpty || !newLinks.isEmpty {
            journal.pendingNamespaces = Array(Set(journal.pendingNamespaces).union(newNamespaces)).sorted()
            journal.pendingLinks = Array(Set(journal.pendingLinks).union(newLinks)).sorted()
            try journal.save()
        }
        let namespacesMade = MadeSoFar()
        var creating: Background<Void>?
        undo.namespaces = newNamespaces
        if !newNamespaces.isEmpty {
            creating = Background { [namespacesMade, undo] in
                defer { namespacesMade.finish() }
                try NetworkNamespace.create(named: newNamespaces) { made in
                    undo.madeNamespaces(made)
                    namespacesMade.set(made)
                }
            }
        }
        // Never leave the thread running (nor a namespace half made) behind an error.
        defer { _ = creating?.wait() }
        // A third thread opens a socket in each new namespace as it appears and brings its `lo` up
        // with the topology's tag (round trips that fit between the other two threads' kernel work:
        // A/B at 1000 VNICs, 1062–1098 against 1053–1127 ms).
        var opening: Background<[NetlinkHandle]>?
        if !newNamespaces.isEmpty {
            opening = Background { [namespacesMade] in
                var opened: [NetlinkHandle] = []
                while opened.count < newNamespaces.count {
                    let ready = try namespacesMade.wait(forMoreThan: opened.count)
                    let names = Array(newNamespaces[opened.count..<ready])
                    for (n, h) in zip(names, try NetlinkHandle.open(namespaces: names.map(NetworkNamespace.named))) {
                        try h.perform([LinkRequest.change("lo", LinkSettings(up: true, alias: tags[n]!))])
                        opened.append(h)
                    }
                }
                return opened
            }
        }
        defer { _ = opening?.wait() }

        for case .tagNamespace(let n) in ops {
            try handles[n]!.perform([LinkRequest.change("lo", LinkSettings(up: true, alias: tags[n]!))])
            result.changed += 1
            tick(1)
        }
        // 3. Switches, then VNICs (host side on its switch, endpoint side straight into its
        //    namespace), in pipelined batches. No VNIC before the early rules are in.
        if !bridges.isEmpty || !ifbs.requests.isEmpty {
            try handle.performLinks(try bridges.flatMap { b in
                LinkRequest.add(try InterfaceName(validating: b.name), Bridge(stp: false),
                                LinkSettings(up: true, mtu: b.mtu, group: desired.group, alias: b.tag, ipv6LinkLocal: LinkSettings.noLinkLocal))
            } + ifbs.requests)
            result.created += bridges.count + ifbs.ifbs
            tick(bridges.count)
        }
        let needIndex = ops.contains {
            switch $0 { case .createVNIC, .changeVNIC, .startVM: return true; default: return false }
        }
        var bridgeIndex = needIndex ? Dictionary(try handle.links(statistics: false).map { ($0.name, $0.index) }, uniquingKeysWith: { a, _ in a }) : [:]
        // The early rules are in before any VNIC moves or is made.
        let earlyResult = early?.wait()
        if case .failure(let e)? = earlyResult { throw e }
        var changes: [NetlinkRequest] = []
        for case .changeVNIC(let dev, let bridge, let mtu) in ops {
            changes.append(LinkRequest.change(try InterfaceName(validating: dev),
                                              LinkSettings(mtu: mtu, masterIndex: bridge.flatMap { bridgeIndex[$0] })))
            result.changed += 1
        }
        try handle.performLinks(changes)
        tick(changes.count)
        // What goes up last (step 7): endpoints found down, then their default routes.
        var lastPerHost: [String: [NetlinkRequest]] = [:]
        var portsUp: [NetlinkRequest] = []
        // VNICs of existing namespaces first, then in the order their namespaces are made, each
        // batch as soon as its namespaces exist.
        let order = Dictionary(newNamespaces.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let vnics = ops.compactMap { if case .createVNIC(let v) = $0 { return v } else { return nil } }
            .enumerated().sorted { (order[$0.element.namespace] ?? -1, $0.offset) < (order[$1.element.namespace] ?? -1, $1.offset) }.map(\.element)
        var next = 0
        while next < vnics.count {
            let ready: Int
            do { ready = try namespacesMade.wait(forMoreThan: order[vnics[next].namespace] ?? -1) } catch {
                try creating?.wait().get()   // the namespaces' own error, if that is why
                throw error
            }
            var end = next
            while end < vnics.count, (order[vnics[end].namespace] ?? -1) < ready { end += 1 }
            portsUp += try createVNICs(Array(vnics[next..<end]), desired: desired, bridgeIndex: bridgeIndex)
            result.created += end - next
            tick(end - next)
            next = end
        }
        if let creating {
            try creating.wait().get()
            result.created += newNamespaces.count
            tick(newNamespaces.count)
            phase("namespaces, switches and vnics")
            for (n, h) in zip(newNamespaces, try opening!.wait().get()) { handles[n] = h }
            phase("namespaces: open and tag")
        }
        for case .startVM(let host) in ops {
            let vm = desired.vms.first { $0.host == host }!
            undo.guests.append(vm.directory)
            try startVM(vm, group: desired.group, bridgeIndex: bridgeIndex, bridges: current.bridgeIndexes)
            result.created += 1
            tick(1)
        }
        bridgeIndex = [:]
        phase(creating == nil ? "switches, vnics and guests" : "guests")
        // 4. Inside each host: MACs, addresses and default routes — one pipelined batch per host.
        //    New endpoints are up but have no carrier: their ports stay down until their caps and
        //    rules are in place (step 7).
        var perHost: [String: [NetlinkRequest]] = [:]
        var hostIndex: [String: [String: Int32]] = [:]
        func index(_ ns: String, _ dev: String) throws -> Int32 {
            // The links read while planning serve, unless this apply made the device.
            if let i = hostIndex[ns]?[dev] ?? current.hosts[ns]?.links.first(where: { $0.name == dev })?.index { return i }
            if hostIndex[ns] == nil {
                hostIndex[ns] = Dictionary(try handles[ns]!.links(statistics: false).map { ($0.name, $0.index) }, uniquingKeysWith: { a, _ in a })
            }
            guard let i = hostIndex[ns]![dev] else {
                throw NetlinkError(context: RequestContext("configure", dev), errno: .noSuchDevice, hint: "\(dev) missing in netns \(ns)")
            }
            return i
        }
        // Hosts whose endpoint was found down: it comes up at the end, and their routes with it.
        let comingUp = Set(ops.compactMap { if case .bringUp(let ns, _) = $0 { return ns } else { return nil } })
        func route(_ ns: String, _ request: NetlinkRequest) {
            if comingUp.contains(ns) { lastPerHost[ns, default: []].append(request) } else { perHost[ns, default: []].append(request) }
        }
        // New endpoints that are to have no IPv6 link-local address get the mode while they have
        // no carrier (their ports are down), so the kernel never makes one.
        for case .createVNIC(let v) in ops where !v.linkLocal && LinkSettings.noLinkLocal != nil {
            perHost[v.namespace, default: []].append(LinkRequest.change(try InterfaceName(validating: v.name), LinkSettings(ipv6LinkLocal: LinkSettings.noLinkLocal)))
        }
        var quietFabricLinks: [String] = []
        for o in ops {
            switch o {
            case .setLinkLocal(let ns?, let dev, let on):
                perHost[ns, default: []].append(LinkRequest.change(try InterfaceName(validating: dev), LinkSettings(ipv6LinkLocal: on)))
            case .setLinkLocal(nil, let dev, _):
                quietFabricLinks.append(dev)
            case .changeMAC(let ns, let dev, let mac):
                perHost[ns, default: []].append(LinkRequest.change(try InterfaceName(validating: dev), LinkSettings(mac: mac)))
            case .bringUp(let ns, let dev):
                lastPerHost[ns, default: []].append(LinkRequest.change(try InterfaceName(validating: dev), LinkSettings(up: true)))
            case .bringUpPort(let dev):
                portsUp.append(LinkRequest.change(try InterfaceName(validating: dev), LinkSettings(up: true)))
            case .addAddress(let ns, let dev, let p):
                perHost[ns, default: []].append(AddressRequest.add(p, linkIndex: try index(ns, dev), linkName: dev, replace: true))
            case .removeAddress(let ns, let dev, let p):
                perHost[ns, default: []].append(AddressRequest.delete(p, linkIndex: try index(ns, dev), linkName: dev))
            case .setGateway(let ns, let dev, let g):
                // A route needs its device up: new endpoints are, one found down comes up at the end.
                route(ns, RouteRequest.add(Route(destination: nil, gateway: g, outputIndex: try index(ns, dev)), replace: true))
            case .removeGateway(let ns, let g):
                // In the same batch as the new one, so a host is not left without a route meanwhile.
                route(ns, RouteRequest.delete(Route(destination: nil, gateway: g)))
            default:
                continue
            }
            count(o)
        }
        for (ns, requests) in perHost {
            try handles[ns]!.perform(requests)
            tick(requests.count)
        }
        try quietLinks(quietFabricLinks)

        phase("addresses and routes")
        // 5. Caps, tenant by tenant; VNICs no longer capped lose their redirects.
        var groups: [CapGroup] = []
        for case .applyCaps(let tenant) in ops {
            guard var g = desired.capGroups.first(where: { $0.name == tenant }) else { continue }
            for i in g.members.indices where g.members[i].mac == nil {
                // `mac: random`: the kernel picked it; the caps use what it picked.
                let v = desired.vnics.first { $0.hostDevice == g.members[i].device.rawValue }!
                g.members[i].mac = try handles[v.namespace]!.link(named: try InterfaceName(validating: v.name)).mac
            }
            groups.append(g)
        }
        let shaper = Shaper(handle: handle)
        if !groups.isEmpty {
            // When this apply changed no link in the fabric, the links read while planning serve.
            let linksUnchanged = ops.allSatisfy { o in
                switch o { case .applyCaps, .installProtection, .addAddress, .removeAddress, .setGateway, .removeGateway, .changeMAC, .bringUp,
                           .bringUpPort, .setLinkLocal: return true
                default: return false }
            }
            let state = linksUnchanged ? try capsRead?.wait().get() : nil
            let r = try shaper.apply(groups, links: linksUnchanged ? current.links : nil, state: state)
            result.created += r.created
            result.changed += r.changed
            result.deleted += r.deleted
            tick(groups.count)
        }
        let capped = Set(groups.flatMap { $0.members.map(\.device.rawValue) })
        let uncapped = desired.vnics.filter { !capped.contains($0.hostDevice) }
        if !uncapped.isEmpty {
            let clsact = Set(try handle.qdiscs().filter { CapGroup.isQuiverClsact($0.kind) }.map(\.ifindex))
            let currentByName = Dictionary(current.links.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for v in uncapped {
                if let l = currentByName[v.hostDevice], clsact.contains(l.index) {
                    if try shaper.detach(device: try InterfaceName(validating: v.hostDevice)) { result.deleted += 1 }
                }
            }
        }
        phase("caps")
        // 6. Isolation and protection: the whole table in one transaction.
        for o in ops {
            switch o {
            case .installProtection:
                if let r = earlyResult {
                    if try r.get() { count(o) }
                    tick(1)
                    continue
                }
                var macs: [String: MACAddress] = [:]
                for v in desired.vnics where v.mac == nil {
                    macs[v.hostDevice] = try handles[v.namespace]!.link(named: try InterfaceName(validating: v.name)).mac
                }
                guard let r = desired.ruleset(macs: macs) else { continue }
                if case .absent = current.firewall { undo.rulesMade = true }
                if try firewall.install(r) { count(o) }
                tick(1)
            case .removeProtection:
                let n = KernelNames(t.name)
                if try firewall.remove(table: n.firewallTable, ownerTag: n.tagPrefix) { count(o) }
                tick(1)
            default:
                continue
            }
        }
        phase("isolation and protection")
        // 7. Ports up, now that their caps and rules are in place (even those of a `mac: random`
        //    VNIC, whose rules could only be written once the kernel picked its MAC), and endpoints
        //    found down with their default routes, which need their device up.
        // The ports (one batch in the fabric) on a thread of their own beside the hosts' batches.
        let ports = portsUp.isEmpty ? nil : Background { [handle, portsUp] in try handle.perform(portsUp) }
        for (ns, requests) in lastPerHost {
            try handles[ns]!.perform(requests)
            tick(requests.count)
        }
        try ports?.wait().get()
        tick(portsUp.count)
        phase("ports up")
        journal.pendingNamespaces = []
        journal.pendingLinks = []
        journal.appliedAt = Date()
        try journal.save()
        result.phases = phases
        result.milliseconds = Date().timeIntervalSince(start) * 1000
        return result
    }

    /// Creates the VNICs' veth pairs in one pipelined batch: the endpoint straight into its
    /// namespace and up, the port beside it in the fabric, down, then put on its switch with its
    /// tag. The endpoint has no carrier until its port comes up, and the port comes up only once
    /// caps and rules are in place: returns the requests that do that.
    ///
    /// The endpoint is the pair's main link because the kernel can bring only that one up while
    /// it makes the pair (one request less per VNIC at the end of an apply); the port, the peer,
    /// lands in the namespace of the socket that asks.
    func createVNICs(_ vnics: [DesiredFabric.VNIC], desired: DesiredFabric, bridgeIndex: [String: Int32]) throws -> [NetlinkRequest] {
        var fds: [String: FileDescriptorBox] = [:]
        defer { fds.values.forEach { $0.close() } }
        for ns in Set(vnics.map(\.namespace)) { fds[ns] = FileDescriptorBox(try NetworkNamespace.named(ns).open().rawValue) }
        var requests: [NetlinkRequest] = []
        var portsUp: [NetlinkRequest] = []
        for v in vnics {
            guard let br = bridgeIndex[v.bridge] else {
                throw NetlinkError(context: RequestContext("create vnic", v.hostDevice), errno: .noSuchDevice, hint: "switch \(v.bridge) missing")
            }
            let port = try InterfaceName(validating: v.hostDevice)
            let veth = Veth(peer: port, peerSettings: LinkSettings(mtu: v.mtu, group: desired.group, txQueues: 1, rxQueues: 1))
            var create = LinkRequest.add(try InterfaceName(validating: v.name), veth,
                                         LinkSettings(up: true, mtu: v.mtu, mac: v.mac, namespace: .fd(fds[v.namespace]!.fd), txQueues: 1, rxQueues: 1))
            // Errors name the VNIC by its port, as everything else does, and say where its endpoint goes.
            create[0].context = RequestContext("create vnic", "\(v.hostDevice) (endpoint \(v.name) in netns \(v.namespace))")
            requests += create
            // The port: no IPv6 link-local address (nor the duplicate address detection, MLD
            // reports and router solicitations that come with one), and none of the thousand
            // fe80::/64 routes that many ports would put in the fabric's routing table. It stays
            // down until its caps and rules are in place: a clsact qdisc attached to a link that
            // is up costs an RCU grace period (the kernel deactivates the link's queues).
            requests.append(LinkRequest.change(port, LinkSettings(masterIndex: br, alias: v.tag, ipv6LinkLocal: LinkSettings.noLinkLocal)))
            portsUp.append(LinkRequest.change(port, LinkSettings(up: true)))
        }
        try handle.performLinks(requests)
        return portsUp
    }

    /// Fabric links made before they were given no IPv6 link-local address (an older Quiver, or
    /// an apply interrupted between creating a link and setting its mode): the mode, then the
    /// link-local addresses they already have.
    func quietLinks(_ names: [String]) throws {
        guard !names.isEmpty else { return }
        try handle.perform(try names.map { LinkRequest.change(try InterfaceName(validating: $0), LinkSettings(ipv6LinkLocal: LinkSettings.noLinkLocal)) })
        let indexes = Dictionary(try handle.links(statistics: false).map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        let wanted = Set(names)
        try handle.perform(try handle.addresses().filter { a in
            a.isIPv6LinkLocal && indexes[a.linkIndex].map(wanted.contains) == true
        }.map { AddressRequest.delete($0.prefix, linkIndex: $0.linkIndex, linkName: indexes[$0.linkIndex]!) })
    }

    func removeCaps(topology: String, tenant: String, current: CurrentFabric) throws {
        let names = KernelNames(topology)
        let shaper = Shaper(handle: handle)
        for l in current.links where names.owns(l) && l.alias?.hasPrefix(names.tagPrefix + "vnic/\(tenant)/") == true {
            try shaper.detach(device: try InterfaceName(validating: l.name))
        }
        for ifb in [names.ifbFrom(tenant: tenant), names.ifbTo(tenant: tenant)] where current.links.contains(where: { $0.name == ifb }) {
            try handle.deleteLink(try InterfaceName(validating: ifb))
        }
    }

    /// Large topologies hold a descriptor per namespace while they are wired up.
    static func raiseDescriptorLimit() {
        var l = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l) == 0, l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
        }
    }
}

/// Conflicts found while planning: nothing was changed.
public struct ConflictList: Error, Sendable, CustomStringConvertible {
    public var conflicts: [Conflict]
    public var description: String { conflicts.map(\.description).joined(separator: "\n") }
}
