import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink

/// What the daemon listens to: in each fabric namespace, rtnetlink (links, addresses, routes,
/// qdiscs, classes, filters) and nfnetlink (nftables); in each host namespace, rtnetlink; and
/// `/run/netns`, to learn that a host's namespace was deleted. Notifications become
/// ``DriftEvent``s for the topologies they concern (``FabricAttribution``).
///
/// A socket in a namespace keeps that namespace alive, so when a watched namespace's name is
/// removed (`ip netns del`) its socket is closed at once: the namespace then really goes, its
/// VNIC ends with it, and the next apply makes it again.
final class DriftWatch {
    private struct FabricEars {
        var route: NetlinkMonitor
        var nftables: NetlinkMonitor
        var attribution: FabricAttribution
    }
    /// By fabric namespace name ("" for the host's).
    private var fabrics: [String: FabricEars] = [:]
    /// By host namespace name.
    private var hosts: [String: NetlinkMonitor] = [:]
    private var watched: [WatchedTopology] = []
    private let inotify: Int32

    init() throws {
        inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotify >= 0 else { throw SystemCallError("inotify_init1", errno: .init(rawValue: errno)) }
        // `ip netns` and Quiver make it as needed; the daemon may start before any namespace exists.
        mkdir(NetworkNamespace.runDirectory, 0o755)
        guard inotify_add_watch(inotify, NetworkNamespace.runDirectory, UInt32(IN_DELETE | IN_CREATE)) >= 0 else {
            throw SystemCallError("inotify_add_watch", NetworkNamespace.runDirectory, errno: .init(rawValue: errno))
        }
    }

    deinit { close(inotify) }

    /// Every descriptor to poll.
    var descriptors: [Int32] {
        [inotify] + fabrics.values.flatMap { [$0.route.fileDescriptor, $0.nftables.fileDescriptor] } + hosts.values.map(\.fileDescriptor)
    }

    /// Listens to exactly what `watched` needs: opens sockets in namespaces not listened to yet,
    /// closes those no topology needs any more. A namespace that is missing is skipped (the next
    /// apply makes it, and the next update listens to it). Returns what could not be opened.
    @discardableResult
    func update(_ watched: [WatchedTopology]) -> [String] {
        self.watched = watched
        var problems: [String] = []
        let wantedFabrics = Set(watched.map { $0.fabricNamespace ?? "" })
        for name in fabrics.keys where !wantedFabrics.contains(name) { fabrics[name] = nil }
        for name in wantedFabrics where fabrics[name] == nil {
            do {
                let ns = name.isEmpty ? nil : NetworkNamespace.named(name)
                let open = { () throws -> FabricEars in
                    let route = try NetlinkMonitor(protocol: NETLINK_ROUTE, groups: NetlinkMonitor.routeGroups)
                    let nft = try NetlinkMonitor(protocol: NETLINK_NETFILTER, groups: NetlinkMonitor.nftablesGroups)
                    // The dump after the subscription: no link made in between is missed.
                    let links = try NetlinkHandle(namespace: nil).links(statistics: false)
                    return FabricEars(route: route, nftables: nft, attribution: FabricAttribution(links: links))
                }
                fabrics[name] = try ns.map { try $0.run(open) } ?? open()
            } catch {
                problems.append("fabric namespace \(name.isEmpty ? "(host)" : name): \(error)")
            }
        }
        let wantedHosts = Set(watched.flatMap(\.hostNamespaces))
        for name in hosts.keys where !wantedHosts.contains(name) { hosts[name] = nil }
        let missing = wantedHosts.subtracting(hosts.keys).filter { NetworkNamespace.named($0).exists }.sorted()
        guard !missing.isEmpty else { return problems }
        // One thread enters each namespace in turn: a thousand hosts need no thousand threads.
        var opened: [(String, Result<NetlinkMonitor, Error>)] = []
        do {
            try NetworkNamespace.onFreshThread {
                for name in missing {
                    opened.append((name, Result {
                        let fd = try NetworkNamespace.named(name).open()
                        defer { try? fd.close() }
                        let rc = quiver_setns(fd.rawValue, quiver_clone_newnet())
                        guard rc == 0 else { throw SystemCallError("setns", "netns \(name)", errno: .init(rawValue: -rc)) }
                        return try NetlinkMonitor(protocol: NETLINK_ROUTE, groups: NetlinkMonitor.routeGroups)
                    }))
                }
            }
        } catch {
            problems.append("\(error)")
        }
        for (name, r) in opened {
            switch r {
            case .success(let m): hosts[name] = m
            case .failure(let e): problems.append("namespace \(name): \(e)")
            }
        }
        return problems
    }

    /// What the kernel said since the last call: drift events, and the keys of topologies that
    /// must be re-read in full (a queue overflowed, so something may have been missed). `ready`:
    /// only these descriptors have something to read (what `poll` said); nil reads every one.
    func drain(ready: Set<Int32>? = nil) -> (events: [DriftEvent], overrun: Set<String>) {
        var events: [DriftEvent] = []
        var overrun = Set<String>()
        func wanted(_ fd: Int32) -> Bool { ready?.contains(fd) ?? true }
        for (name, var ears) in fabrics where wanted(ears.route.fileDescriptor) || wanted(ears.nftables.fileDescriptor) {
            let here = watched.filter { ($0.fabricNamespace ?? "") == name }
            for monitor in [ears.route, ears.nftables] where wanted(monitor.fileDescriptor) {
                switch monitor.receive() {
                case .overrun: overrun.formUnion(here.map(\.key))
                case .messages(let ms): for m in ms { events += ears.attribution.events(m, watched: here) }
                }
            }
            fabrics[name] = ears
        }
        for (name, monitor) in hosts where wanted(monitor.fileDescriptor) {
            switch monitor.receive() {
            case .overrun: overrun.formUnion(watched.filter { $0.hostNamespaces.contains(name) }.map(\.key))
            case .messages(let ms): for m in ms { events += HostAttribution.events(m, namespace: name, watched: watched) }
            }
        }
        if wanted(inotify) { events += namespaceChanges() }
        return (events, overrun)
    }

    /// Names added to or removed from `/run/netns` that are watched hosts' namespaces.
    private func namespaceChanges() -> [DriftEvent] {
        var events: [DriftEvent] = []
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buf.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            var off = 0
            while off + MemoryLayout<inotify_event>.size <= n {
                let (mask, len) = buf.withUnsafeBytes { raw -> (UInt32, Int) in
                    let e = raw.loadUnaligned(fromByteOffset: off, as: inotify_event.self)
                    return (e.mask, Int(e.len))
                }
                let nameStart = off + MemoryLayout<inotify_event>.size
                let name = String(decoding: buf[nameStart..<min(nameStart + len, n)].prefix { $0 != 0 }, as: UTF8.self)
                off = nameStart + len
                let owners = watched.filter { $0.hostNamespaces.contains(name) }
                guard !owners.isEmpty else { continue }
                if mask & UInt32(IN_DELETE) != 0 {
                    hosts[name] = nil
                    events += owners.map { DriftEvent(key: $0.key, what: "namespace \(name) deleted") }
                }
            }
        }
        return events
    }
}
