import ArgumentParser
import Foundation
import Logging
import QuiverDaemon
import QuiverFabric
import QuiverKernel
import QuiverTopology

/// Where persistent records live.
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Directory of persistent records (default: \(PersistentStore.defaultDirectory)).", valueName: "dir"))
    var configDir: String = PersistentStore.defaultDirectory

    func store() throws -> PersistentStore {
        do { return try PersistentStore(path: configDir) } catch { throw ValidationError("\(error)") }
    }
}

struct EnableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enable",
        abstract: "Record a topology as persistent: `quiver daemon` applies it at start and keeps it repaired (like dladm without -t).",
        discussion: "The file is validated now and copied; later edits take effect at the next `enable` (then SIGHUP the daemon).")
    @Argument(help: "Topology file (YAML or JSON).") var file: String
    @OptionGroup var fabric: FabricOptions
    @OptionGroup var store: StoreOptions

    func run() throws {
        _ = try loadTopology(file)
        let ns: NamespaceName?
        do { ns = try fabric.fabricNetns.map { try NamespaceName(validating: $0) } } catch { throw ValidationError("--fabric-netns: \(error)") }
        do {
            let r = try store.store().enable(file: file, node: fabric.node, fabricNetns: ns)
            print("\(r.topology): persistent (\(try store.store().path)/\(r.topology).json, from \(r.source))")
        } catch let e as PersistentStoreError {
            throw ValidationError(e.description)
        } catch let e as StateDirectoryError {
            throw ValidationError(e.description)
        }
    }
}

struct DisableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disable",
                                                    abstract: "Remove a topology's persistent record; the running fabric is left alone (`destroy` removes it).")
    @Argument(help: "Topology name.") var name: String
    @OptionGroup var store: StoreOptions

    func run() throws {
        let n: TopologyName
        do { n = try TopologyName(validating: name) } catch { throw ValidationError("\(error)") }
        print(try store.store().disable(n) ? "\(n): no longer persistent (still running until `quiver destroy \(n)`)" : "\(n): was not persistent")
    }
}

struct DaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Apply every persistent topology, repair drift, supervise guests, serve metrics (foreground, for systemd).",
        discussion: "SIGHUP reads the persistent records again; SIGTERM exits and leaves every fabric and guest running. docs/DAEMON.md")
    @OptionGroup var store: StoreOptions
    @Option(help: ArgumentHelp("Serve /metrics here: ADDRESS:PORT, or `none`.", valueName: "address")) var metricsAddress = MetricsAddress.default.description
    @Option(help: ArgumentHelp("Write quiver.prom here for node_exporter's textfile collector.", valueName: "dir")) var textfile: String?
    @Option(help: ArgumentHelp("Seconds between full reconciles.", valueName: "seconds")) var reconcileInterval: Double = 300
    @Option(help: ArgumentHelp("Restarts of a guest within --restart-window before it is left stopped.", valueName: "count")) var restartLimit = 5
    @Option(help: ArgumentHelp("Seconds over which restarts are counted.", valueName: "seconds")) var restartWindow: Double = 300
    @Option(help: ArgumentHelp("First restart delay in seconds, doubled per restart in the window.", valueName: "seconds")) var restartBackoff: Double = 1
    @Option(help: ArgumentHelp("text or json.", valueName: "format")) var logFormat: String = "text"
    @Flag(help: "Log every event, also those that needed no repair.") var debug = false

    func validate() throws {
        guard LogFormat(rawValue: logFormat) != nil else { throw ValidationError("--log-format is text or json, got \(InvalidValue.quoted(logFormat))") }
        guard reconcileInterval >= 1 && reconcileInterval <= 86400 else { throw ValidationError("--reconcile-interval takes 1 to 86400 seconds") }
        guard (1...1000).contains(restartLimit) else { throw ValidationError("--restart-limit takes 1 to 1000") }
        guard restartWindow >= 1 && restartWindow <= 86400, restartBackoff >= 0.01 && restartBackoff <= 3600 else {
            throw ValidationError("--restart-window takes 1 to 86400 seconds, --restart-backoff 0.01 to 3600")
        }
        if let textfile, !textfile.hasPrefix("/") { throw ValidationError("--textfile takes an absolute directory path") }
    }

    func run() throws {
        var o = DaemonOptions(store: try store.store())
        do { o.metrics = metricsAddress == "none" ? nil : try MetricsAddress(parsing: metricsAddress) } catch { throw ValidationError("\(error)") }
        o.textfileDirectory = textfile
        o.reconcileInterval = reconcileInterval
        o.restartLimits = RestartLimits(initialBackoff: restartBackoff, limit: restartLimit, window: restartWindow)
        let format = LogFormat(rawValue: logFormat)!
        let level: Logger.Level = debug ? .debug : .info
        var log = Logger(label: "quiver") { LineLogHandler(label: $0, format: format) }
        log.logLevel = level
        if let m = o.metrics, !m.isLoopback { log.warning("metrics served beyond loopback", metadata: ["address": "\(m)"]) }
        do { try Daemon(options: o, logger: log).run() } catch let e as PersistentStoreError { throw ValidationError(e.description) }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status",
                                                    abstract: "One screen: topologies (persistent, applied, reconciles, repairs), guests (state, restarts), what the daemon could not fix.")
    @OptionGroup var store: StoreOptions
    @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format")) var output: OutputFormat = .table

    struct Row: Encodable {
        var topology: String; var persistent: Bool; var applied: Bool; var lastReconcile: Date?; var repairs: Int; var lastRepair: Date?
        var problem: String?
    }

    func run() throws {
        let entries = try store.store().entries()
        let persistent = Set(entries.compactMap { try? $0.record.get().topology })
        let daemon = DaemonStatus.load()
        let live = daemon?.running == true ? daemon?.status : nil
        var rows: [String: Row] = [:]
        for j in try Journal.all() {
            let key = j.node.map { "\(j.topology)@\($0)" } ?? j.topology
            rows[key] = Row(topology: key, persistent: persistent.contains(j.topology), applied: j.appliedAt != nil, repairs: 0)
        }
        for t in live?.topologies ?? [] {
            var r = rows[t.key] ?? Row(topology: t.key, persistent: true, applied: false, repairs: 0)
            r.applied = t.applied
            r.lastReconcile = t.lastReconcile
            r.repairs = t.repairs
            r.lastRepair = t.lastRepair
            r.problem = t.problem
            rows[t.key] = r
        }
        for name in persistent where !rows.keys.contains(where: { $0 == name || $0.hasPrefix(name + "@") }) {
            rows[name] = Row(topology: name, persistent: true, applied: false, repairs: 0, problem: "persistent, not applied")
        }
        let sorted = rows.values.sorted { $0.topology < $1.topology }
        let unusable = (live?.unusable ?? []) + entries.compactMap { e in if case .failure(let f) = e.record { return "\(e.name): \(f)" }; return nil }
        if output == .json {
            struct Out: Encodable { var daemon: String; var topologies: [Row]; var guests: [GuestWatch]; var unusable: [String] }
            print(try renderJSON(Out(daemon: live.map { "running (pid \($0.pid))" } ?? "not running", topologies: sorted, guests: live?.guests ?? [],
                                     unusable: Array(Set(unusable)).sorted())))
            return
        }
        let f = ISO8601DateFormatter()
        print("daemon: " + (live.map { "running (pid \($0.pid), since \(f.string(from: $0.startedAt)))" } ?? "not running"))
        var t = Table(["TOPOLOGY", "PERSISTENT", "APPLIED", "LAST RECONCILE", "REPAIRS", "LAST REPAIR", "PROBLEM"])
        for r in sorted {
            t.add([r.topology, r.persistent ? "yes" : "no", r.applied ? "yes" : "no", r.lastReconcile.map { f.string(from: $0) } ?? "-", "\(r.repairs)",
                   r.lastRepair.map { f.string(from: $0) } ?? "-", r.problem ?? "-"])
        }
        print(t.render())
        if let guests = live?.guests, !guests.isEmpty {
            var g = Table(["GUEST", "POLICY", "STATE", "RESTARTS", "LAST EXIT", "WHY"])
            for w in guests { g.add(["\(w.topology)/\(w.host)", w.policy.rawValue, w.state, "\(w.restarts)", w.lastExit?.rawValue ?? "-", w.reason ?? "-"]) }
            print(g.render())
        }
        for u in Set(unusable).sorted() { print("not applied: \(u)") }
    }
}
