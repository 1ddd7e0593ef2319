import ArgumentParser
import Foundation
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverTopology

/// Where the fabric lives: the host namespace, or a namespace given with --fabric-netns.
struct FabricOptions: ParsableArguments {
    @Option(help: "Build the fabric (switches, host-side VNIC ends, IFBs) in this named namespace instead of the host's.")
    var fabricNetns: String?
    @Option(help: "With a file that has `nodes:`: act on this node's hosts (default: the node whose underlay address is this host's).")
    var node: String?

    func open() throws -> Fabric {
        if let node { do { _ = try ObjectName(validating: node) } catch { throw ValidationError("--node: \(error)") } }
        return try Fabric(fabric: try fabricNetns.map { try namespace($0, option: "--fabric-netns") })
    }

    /// The file's part this host builds: placed on its node (a multi-node file), or all of it.
    func place(_ t: Topology, on f: Fabric) throws -> Topology {
        do { return try f.placed(t, node: node) } catch let e as NodeError { throw ValidationError(e.description) }
    }
}

/// Loads and validates a file; validation errors exit 2 with every problem listed (as JSON on
/// standard output with `-o json`).
func loadTopology(_ path: String, json: Bool = false) throws -> Topology {
    do {
        return try TopologyParser.load(path: path)
    } catch let e as TopologyErrors {
        if json {
            struct Row: Encodable { var file: String?; var line: Int?; var column: Int?; var message: String; var hint: String? }
            struct Out: Encodable { var valid = false; var errors: [Row] }
            print(try renderJSON(Out(errors: e.errors.map {
                Row(file: $0.location?.file, line: $0.location?.line, column: $0.location?.column, message: $0.message, hint: $0.hint)
            })))
        } else {
            FileHandle.standardError.write(Data((e.description + "\n").utf8))
        }
        throw ExitCode(2)
    }
}

/// A named network namespace from an option: the name validated (never a path), and the
/// namespace present.
func namespace(_ name: String, option: String) throws -> NetworkNamespace {
    let n: NamespaceName
    do { n = try NamespaceName(validating: name) } catch { throw ValidationError("\(option): \(error)") }
    guard n.namespace.exists else { throw ValidationError("\(option): no network namespace named \"\(n)\" (see `ip netns list`)") }
    return n.namespace
}

/// What a FILE|NAME argument names: a topology file (a regular file at that path), or else the
/// name of a topology — validated like a name in a file before it names anything.
enum TopologyTarget {
    case file(String)
    case name(TopologyName)

    init(_ target: String) throws {
        var st = stat()
        if stat(target, &st) == 0, st.st_mode & S_IFMT == S_IFREG {
            self = .file(target)
            return
        }
        do { self = .name(try TopologyName(validating: target)) } catch {
            throw ValidationError("\(InvalidValue.quoted(target)) is no topology file, and not a topology name: \(error)")
        }
    }
}

/// Every applied topology whose file still reads and validates; for the others a note on standard
/// error says why they are left out (a file moved or edited since is no reason to show nothing).
func appliedTopologies() throws -> [Topology] {
    // (A multi-node file applied as several nodes on this host has a record per node.)
    var seen = Set<String>()
    return try Journal.all().filter { seen.insert($0.topology).inserted }.compactMap { j in
        guard let file = j.file else { return nil }
        do { return try TopologyParser.load(path: file) } catch {
            let why = (error as? TopologyErrors)?.errors.first?.description ?? "\(error)"
            FileHandle.standardError.write(Data("quiver: note: topology \(j.topology) left out: \(why)\n".utf8))
            return nil
        }
    }
}

/// A topology file, or the file an applied topology of that name was applied from.
func topologyFile(_ target: String) throws -> String {
    switch try TopologyTarget(target) {
    case .file(let f): return f
    case .name(let n):
        guard let file = try Journal.load(n)?.file ?? Journal.nodes(of: n).first?.file else {
            throw ValidationError("no file \(target), and no applied topology of that name (see `quiver list`)")
        }
        return file
    }
}

/// What apply and destroy print with `-o json`: `phases` as planned (with their steps),
/// `operations` every step in the order they run.
struct ResultJSON: Encodable {
    struct PhaseJSON: Encodable {
        var phase: String
        var concurrency: String?
        var steps: [String]
    }
    var topology: String
    var dryRun: Bool
    var phases: [PhaseJSON]
    var operations: [String]
    var created: Int
    var changed: Int
    var deleted: Int
    var milliseconds: Double
    var notes: [String] = []
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "validate", abstract: "Check a topology file; print every error with file:line:column.")
    @Argument(help: "Topology file (YAML or JSON).") var file: String
    @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format")) var output: OutputFormat = .table

    func run() throws {
        let t = try loadTopology(file, json: output == .json)
        let hosts = t.tenants.flatMap(\.hosts)
        let vnics = hosts.flatMap(\.vnics).count
        if output == .json {
            struct Out: Encodable { var valid = true; var topology: String; var switches: Int; var tenants: Int; var hosts: Int; var vnics: Int }
            print(try renderJSON(Out(topology: t.name, switches: t.switches.count, tenants: t.tenants.count, hosts: hosts.count, vnics: vnics)))
            return
        }
        print("\(file): topology \(t.name) is valid: \(t.switches.count) switches, \(t.tenants.count) tenants, \(hosts.count) hosts, \(vnics) vnics")
    }
}

struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Make the host match a topology file: create what is missing, change in place, delete what the file dropped.")
    @Argument(help: "Topology file (YAML or JSON).") var file: String
    @Flag(help: "Print the plan (its phases and their steps), change nothing.") var dryRun = false
    @Flag(name: .shortAndLong, help: "Print the plan phase by phase, step by step, and where the time went.") var verbose = false
    @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format")) var output: OutputFormat = .table
    @OptionGroup var fabric: FabricOptions

    func run() throws {
        let f = try fabric.open()
        let t = try fabric.place(try loadTopology(file, json: output == .json), on: f)
        let tty = isatty(STDOUT_FILENO) == 1 && output == .table
        do {
            let r = try f.apply(t, dryRun: dryRun) { done, total in
                if tty && total >= 50 { FileHandle.standardOutput.write(Data("\r[\(done)/\(total)] applying \(t.name)…".utf8)) }
            }
            if tty { print("\r", terminator: "") }
            if output == .json {
                let phases = r.plan.phases.map { ResultJSON.PhaseJSON(phase: $0.kind.rawValue, concurrency: $0.kind.concurrency, steps: $0.steps.map(\.description)) }
                print(try renderJSON(ResultJSON(topology: t.name, dryRun: dryRun, phases: phases, operations: r.plan.operations.map(\.description),
                                                created: r.created, changed: r.changed, deleted: r.deleted, milliseconds: r.milliseconds, notes: r.notes)))
                return
            }
            if dryRun || verbose { printPhases(r.plan, dryRun: dryRun) }
            if verbose {
                print("time:")
                for (name, ms) in r.phases { print("  " + name.padding(toLength: 44, withPad: " ", startingAt: 0) + String(format: "%8.1f ms", ms)) }
            }
            print(dryRun ? "\(t.name): \(r.plan.stepCount) steps in \(r.plan.phases.count) phases planned (dry run, nothing changed)"
                : "\(t.name): \(r.summary)")
            for n in r.notes { print("note: \(n)") }
        } catch let c as ConflictList {
            FileHandle.standardError.write(Data(("quiver: nothing was changed:\n" + c.description + "\n").utf8))
            throw ExitCode.failure
        } catch let e as TopologyErrors {
            // What only this host's underlay shows (an MTU that does not fit), reported like validation.
            FileHandle.standardError.write(Data((e.description + "\nquiver: nothing was changed\n").utf8))
            throw ExitCode(2)
        } catch let e as NodeError {
            throw ValidationError(e.description)
        }
    }
}

/// The plan as apply runs it: each phase (with how it shares time with the others), its steps.
private func printPhases(_ plan: Plan, dryRun: Bool) {
    for (i, p) in plan.phases.enumerated() {
        print("phase \(i + 1)/\(plan.phases.count): \(p.kind.rawValue)" + (p.kind.concurrency.map { " (\($0))" } ?? ""))
        for step in p.steps { print("  " + (dryRun ? "would " : "") + step.description) }
    }
}

struct DestroyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destroy",
        abstract: "Remove everything a topology owns (found in the kernel; works without the state record).")
    @Argument(help: "Topology file or topology name.") var target: String
    @Flag(name: .shortAndLong, help: "Print where the time went.") var verbose = false
    @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format")) var output: OutputFormat = .table
    @OptionGroup var fabric: FabricOptions

    func run() throws {
        let name: TopologyName
        let f = try fabric.open()
        var node = fabric.node
        switch try TopologyTarget(target) {
        case .file(let file):
            let t = try fabric.place(try loadTopology(file, json: output == .json), on: f)
            name = try TopologyName(validating: t.name)
            node = t.node
        case .name(let n):
            name = n
            // A name alone: the node this host applied, when its record says which.
            if node == nil, try Journal.load(n) == nil {
                let nodes = try Journal.nodes(of: n)
                if let file = nodes.first?.file, let t = try? TopologyParser.load(path: file) {
                    node = try fabric.place(t, on: f).node
                } else if nodes.count > 1 {
                    throw ValidationError("topology \(n) is applied as nodes \(nodes.compactMap(\.node).joined(separator: ", ")) here: say which with --node")
                } else {
                    node = nodes.first?.node
                }
            }
        }
        let r = try f.destroy(topology: name, node: node)
        if output == .json {
            print(try renderJSON(ResultJSON(topology: name.rawValue, dryRun: false, phases: [], operations: [], created: 0, changed: 0,
                                            deleted: r.deleted, milliseconds: r.milliseconds)))
            return
        }
        print(r.deleted == 0 ? "\(name): nothing to destroy" : "\(name): deleted \(r.deleted) objects in \(Int(r.milliseconds)) ms")
        if verbose {
            for (phase, ms) in r.phases { print(String(format: "  %@ %.1f ms", phase, ms)) }
        }
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show",
                                                    abstract: "Show a topology's VNICs, or every applied topology's (like dladm show-vnic).")
    @Argument(help: "Topology file, or the name of an applied topology; without it, every applied topology.") var target: String?
    @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format")) var output: OutputFormat = .table
    @OptionGroup var fabric: FabricOptions

    func run() throws {
        let f = try fabric.open()
        let rows: [VNICRow]
        if let target {
            rows = try f.show(try fabric.place(try loadTopology(try topologyFile(target)), on: f))
        } else {
            // Every applied topology: one that cannot be read now (destroyed or changed while
            // this runs) is left out with a note, as one whose file no longer reads is.
            rows = try appliedTopologies().flatMap { t -> [VNICRow] in
                do { return try f.show(t) } catch {
                    FileHandle.standardError.write(Data("quiver: note: topology \(t.name) left out: \(error)\n".utf8))
                    return []
                }
            }
        }
        switch output {
        case .json: print(try renderJSON(rows))
        case .table:
            var t = Table(["VNIC", "TENANT", "HOST", "OVER", "LINK", "MACADDRESS", "IPS", "MAXBW", "FLOOR", "STATE"])
            for r in rows {
                t.add([r.vnic, r.tenant, r.host, r.over, r.link, r.macaddress, r.ips.isEmpty ? "--" : r.ips.joined(separator: ","), r.maxbw, r.floor, r.state])
            }
            print(t.render())
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List applied topologies, and which are persistent (`quiver enable`).")
    @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format")) var output: OutputFormat = .table
    @OptionGroup var store: StoreOptions

    struct Row: Encodable { var name: String; var file: String?; var appliedAt: Date?; var namespaces: Int; var persistent: Bool }

    func run() throws {
        let namespaces = NetworkNamespace.listNamed()
        let records = try store.store().entries().compactMap { try? $0.record.get() }
        let persistent = Set(records.map(\.topology))
        var rows = try Journal.all().map { j in
            Row(name: j.node.map { "\(j.topology)@\($0)" } ?? j.topology, file: j.file, appliedAt: j.appliedAt,
                namespaces: namespaces.filter { $0.hasPrefix(j.topology + "-") }.count, persistent: persistent.contains(j.topology))
        }
        // Persistent but not applied here (yet): the daemon applies it at start.
        for r in records where !rows.contains(where: { $0.name == r.topology || $0.name.hasPrefix(r.topology + "@") }) {
            rows.append(Row(name: r.topology, file: r.source, appliedAt: nil, namespaces: 0, persistent: true))
        }
        switch output {
        case .json: print(try renderJSON(rows))
        case .table:
            var t = Table(["NAME", "PERSISTENT", "NAMESPACES", "APPLIED", "FILE"])
            let f = ISO8601DateFormatter()
            for r in rows {
                t.add([r.name, r.persistent ? "yes" : "no", "\(r.namespaces)", r.appliedAt.map { f.string(from: $0) } ?? (r.namespaces == 0 && r.persistent ? "not applied" : "incomplete"), r.file ?? "--"])
            }
            print(t.render())
        }
    }
}

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "graph", abstract: "Print the topology as a Graphviz or Mermaid graph.")
    @Argument(help: "Topology file.") var file: String
    @Option(help: "dot or mermaid.") var format: String = "dot"

    func run() throws {
        guard let f = TopologyGraph.Format(rawValue: format) else { throw ValidationError("--format is dot or mermaid") }
        print(TopologyGraph.render(try loadTopology(file), format: f))
    }
}
