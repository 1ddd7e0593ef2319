import Dispatch
import Foundation
import Logging
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverTopology

/// How `quiver daemon` runs (docs/DAEMON.md).
public struct DaemonOptions: Sendable {
    public var store: PersistentStore
    /// A repair starts once no event came for this long…
    public var quiet: TimeInterval = 0.05
    /// …or this long after the first event of a burst, whichever comes first.
    public var maxDelay: TimeInterval = 0.25
    /// A full reconcile of every topology this often (what notifications miss: forwarding
    /// entries, a queue that overflowed).
    public var reconcileInterval: TimeInterval = 300
    public var guestCheckInterval: TimeInterval = 1
    public var restartLimits = RestartLimits()
    /// nil: no HTTP endpoint.
    public var metrics: MetricsAddress? = .default
    /// node_exporter's textfile collector directory: `quiver.prom` is written there.
    public var textfileDirectory: String?
    public var textfileInterval: TimeInterval = 15

    public init(store: PersistentStore) { self.store = store }
}

/// The daemon: applies every persistent topology at start, repairs drift when the kernel says
/// something of a topology's changed, reconciles every topology periodically, supervises guests,
/// serves metrics. One thread runs it all in a `poll` loop (the metrics endpoint has its own);
/// every apply goes through ``Fabric/apply(_:dryRun:leaveStopped:progress:)`` and so holds the
/// topology's lock exactly as `quiver apply` does.
public final class Daemon: @unchecked Sendable {
    final class Managed {
        let record: PersistentRecord
        let topology: Topology
        let fabric: Fabric
        let vms: [DesiredFabric.VM]
        let watched: WatchedTopology
        var status: TopologyStatus
        /// The journal's `applyID` after the daemon's last apply: another value means someone
        /// else applied since.
        var applyID: String?
        /// Drift repair is paused (a hand-made change the daemon will not fight).
        var paused = false
        /// Applies that failed in a row, and when the next repair may try again: what a failed
        /// apply's own rollback changes must not make the next repair at once.
        var failures = 0
        var retryAt: Date?

        /// Which load of the records made it (``SharedView`` keeps a stats reader per serial).
        let serial: Int
        private nonisolated(unsafe) static var serials = 0

        init(record: PersistentRecord, topology: Topology, fabric: Fabric, desired: DesiredFabric) {
            Self.serials += 1  // only the loop thread makes these
            serial = Self.serials
            self.record = record
            self.topology = topology
            self.fabric = fabric
            vms = desired.vms
            let key = KernelNames(topology.name, node: topology.node).scope
            watched = WatchedTopology(key: key, fabricNamespace: record.fabricNetns, desired: desired)
            status = TopologyStatus(key: key, topology: topology.name, node: topology.node, source: record.source)
        }
    }

    let options: DaemonOptions
    let log: Logger
    var managed: [String: Managed] = [:]
    var guests: [String: GuestWatch] = [:]
    var pending: [String: (first: Date, last: Date, found: [String])] = [:]
    var unusable: [String] = []
    let watch: DriftWatch
    let started = Date()
    var nextReconcile: Date
    var nextGuestCheck = Date()
    /// The descriptors the last `poll` found readable: only those are read.
    private var ready = Set<Int32>()
    var nextTextfile = Date()
    private var wake: [Int32] = [-1, -1]
    private let signals = SignalFlags()
    private var sources: [DispatchSourceSignal] = []
    private var server: MetricsServer?
    /// What the metrics endpoint reads, from its own thread.
    private let shared = SharedView()
    /// The status file as last written: an idle turn of the loop writes nothing.
    private var saved: DaemonStatus?
    /// `/run/quiver/daemon.lock`, held while the daemon runs: one daemon per host.
    private var instance: Int32 = -1

    public init(options: DaemonOptions, logger: Logger) throws {
        self.options = options
        log = logger
        watch = try DriftWatch()
        nextReconcile = Date().addingTimeInterval(options.reconcileInterval)
        guard pipe(&wake) == 0 else { throw SystemCallError("pipe", errno: .init(rawValue: errno)) }
        for fd in wake { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    }

    deinit { for fd in wake { close(fd) } }

    /// The port `/metrics` is served on (the kernel's choice when the option said port 0).
    public var metricsPort: Int? { server?.boundPort }

    /// Runs until SIGTERM or SIGINT, which leave every fabric and guest running.
    public func run() throws {
        installSignals()
        try holdInstanceLock()
        log.info("quiver daemon starting", metadata: ["pid": "\(getpid())", "config": "\(options.store.path)"])
        loadRecords()
        for m in managed.values.sorted(by: { $0.status.key < $1.status.key }) { converge(m, found: ["daemon start"], since: Date(), kind: .start) }
        updateWatch()
        if let address = options.metrics {
            server = try MetricsServer(address) { [shared] in shared.render() }
            log.info("serving metrics", metadata: ["address": "\(MetricsAddress(host: address.host, port: server!.boundPort))"])
        }
        publish()
        while !signals.terminate {
            waitForEvents()
            if signals.takeReload() { reload() }
            takeEvents()
            repairDue()
            if Date() >= nextGuestCheck {
                superviseGuests()
                // Without guests there is nothing to look at each second (a reload looks again).
                let anyGuest = managed.values.contains { !$0.vms.isEmpty }
                nextGuestCheck = Date().addingTimeInterval(anyGuest ? options.guestCheckInterval : options.reconcileInterval)
            }
            if Date() >= nextReconcile { reconcileAll() }
            publish()
        }
        server?.close()
        log.info("quiver daemon stopping; fabrics and guests keep running", metadata: ["topologies": "\(managed.count)"])
    }

    /// One daemon per host: two would fight over the same fabrics and write one status file.
    private func holdInstanceLock() throws {
        let dir = try TrustedDirectory.open(TrustedDirectory.runRoot, create: true)!
        let fd = try dir.openLockFile("daemon.lock")
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            let other = DaemonStatus.load().map { " (pid \($0.status.pid))" } ?? ""
            throw PersistentStoreError("another quiver daemon is running on this host\(other)", "stop it first (`systemctl stop quiver`, or SIGTERM)")
        }
        instance = fd
    }

    /// Blocks in `poll` until a notification, a signal, or the nearest deadline.
    private func waitForEvents() {
        var deadline = min(nextReconcile, nextGuestCheck)
        if options.textfileDirectory != nil { deadline = min(deadline, nextTextfile) }
        for (key, p) in pending { deadline = min(deadline, dueTime(key, p)) }
        let ms = max(0, Int32(min(deadline.timeIntervalSinceNow * 1000, 60_000).rounded(.up)))
        var fds = ([wake[0]] + watch.descriptors).map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        _ = poll(&fds, nfds_t(fds.count), ms)
        ready = Set(fds.dropFirst().filter { $0.revents != 0 }.map(\.fd))
        var sink = [UInt8](repeating: 0, count: 64)
        while read(wake[0], &sink, sink.count) > 0 {}
    }

    /// When a pending repair of topology `key` runs: the coalescing window closed, and the
    /// back-off after failed applies passed.
    func dueTime(_ key: String, _ p: (first: Date, last: Date, found: [String])) -> Date {
        max(min(p.first.addingTimeInterval(options.maxDelay), p.last.addingTimeInterval(options.quiet)),
            managed[key]?.retryAt ?? .distantPast)
    }

    /// Notifications become pending repairs (a burst is one repair).
    private func takeEvents() {
        let (events, overrun) = watch.drain(ready: ready)
        let now = Date()
        for e in events where managed[e.key]?.paused == false {
            var p = pending[e.key] ?? (now, now, [])
            p.last = now
            if p.found.count < 20, !p.found.contains(e.what) { p.found.append(e.what) }
            pending[e.key] = p
        }
        for key in overrun where managed[key] != nil {
            log.warning("notifications were lost (queue overflow): full reconcile", metadata: ["topology": "\(key)"])
            var p = pending[key] ?? (now, now, [])
            p.found.append("notifications lost")
            pending[key] = p
        }
    }

    private func repairDue() {
        let now = Date()
        for (key, p) in pending where now >= dueTime(key, p) {
            pending[key] = nil
            guard let m = managed[key], !m.paused else { continue }
            converge(m, found: p.found, since: p.first, kind: .repair)
        }
    }

    private func reconcileAll() {
        for m in managed.values.sorted(by: { $0.status.key < $1.status.key }) where !m.paused {
            converge(m, found: ["periodic reconcile"], since: Date(), kind: .reconcile)
        }
        nextReconcile = Date().addingTimeInterval(options.reconcileInterval)
    }

    func updateWatch() {
        for p in watch.update(managed.values.map(\.watched)) { log.warning("cannot watch", metadata: ["what": "\(p)"]) }
    }

    /// The state `quiver status` reads and metrics export, after every turn of the loop.
    func publish() {
        let topologies = managed.values.map(\.status).sorted { $0.key < $1.key }
        let guestList = guests.values.sorted { ($0.topology, $0.host) < ($1.topology, $1.host) }
        shared.set(topologies: topologies, guests: guestList, managed: managed.values.map { ($0.serial, $0.fabric, $0.topology) }, startedAt: started)
        var s = DaemonStatus(pid: getpid(), startedAt: started, configDirectory: options.store.path)
        s.topologies = topologies
        s.guests = guestList
        s.unusable = unusable
        s.updatedAt = saved?.updatedAt ?? started
        if s != saved {
            s.updatedAt = Date()
            do { try s.save(); saved = s } catch { log.error("cannot write the status file", metadata: ["error": "\(error)"]) }
        }
        if let dir = options.textfileDirectory, Date() >= nextTextfile {
            nextTextfile = Date().addingTimeInterval(options.textfileInterval)
            do { try TrustedDirectory.open(dir, create: false)?.write("quiver.prom", Data(shared.render().bytes())) } catch {
                log.error("cannot write the textfile", metadata: ["directory": "\(dir)", "error": "\(error)"])
            }
        }
    }

    private func installSignals() {
        for (sig, action) in [(SIGTERM, "terminate"), (SIGINT, "terminate"), (SIGHUP, "reload")] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [signals, wake, log] in
                if action == "reload" { signals.requestReload() } else { signals.requestTerminate() }
                log.info("signal received", metadata: ["signal": "\(sig == SIGHUP ? "HUP" : sig == SIGTERM ? "TERM" : "INT")"])
                var one: UInt8 = 1
                _ = write(wake[1], &one, 1)
            }
            source.resume()
            sources.append(source)
        }
    }
}

/// Signals arrive on a dispatch queue; the loop reads them.
final class SignalFlags: @unchecked Sendable {
    private let lock = NSLock()
    private var term = false
    private var hup = false
    var terminate: Bool { lock.withLock { term } }
    func requestTerminate() { lock.withLock { term = true } }
    func requestReload() { lock.withLock { hup = true } }
    func takeReload() -> Bool { lock.withLock { defer { hup = false }; return hup } }
}

/// What the metrics thread may read: a copy the loop replaces after each turn.
final class SharedView: @unchecked Sendable {
    private let lock = NSLock()
    private var topologies: [TopologyStatus] = []
    private var guests: [GuestWatch] = []
    private var managed: [(serial: Int, fabric: Fabric, topology: Topology)] = []
    /// The readers of the last render by serial (the metrics thread's own, under their own lock).
    private let readerLock = NSLock()
    private var readers: [Int: StatsReader] = [:]
    private var startedAt = Date()

    func set(topologies: [TopologyStatus], guests: [GuestWatch], managed: [(serial: Int, fabric: Fabric, topology: Topology)], startedAt: Date) {
        lock.withLock {
            self.topologies = topologies
            self.guests = guests
            self.managed = managed
            self.startedAt = startedAt
        }
    }

    /// Reads every managed topology's counters now, and the daemon's own state. A topology's
    /// reader is kept while the loop hands over the same load of it (its serial: a record read
    /// again is a new one), so a scrape does not plan the fabric again.
    func render() -> PrometheusText.Exposition {
        let (t, g, m, s) = lock.withLock { (topologies, guests, managed, startedAt) }
        let known = readerLock.withLock { readers }
        var kept: [Int: StatsReader] = [:]
        let current: [StatsReader] = m.compactMap { serial, f, topo in
            guard let r = known[serial] ?? (try? StatsReader(f, topo)) else { return nil }
            kept[serial] = r
            return r
        }
        readerLock.withLock { readers = kept }
        // Queue limits are configuration, not counters: the qdisc dump they need is skipped.
        let stats = current.compactMap { try? $0.read(queueLimits: false) }
        return Metrics.exposition(stats, daemon: Metrics.DaemonView(topologies: t, guests: g, startedAt: s))
    }
}
