import ArgumentParser
import Foundation
import QuiverDaemon
import QuiverKernel
import QuiverVM

struct VMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm", abstract: "Guests of kind: vm hosts (started by `quiver apply`).",
        subcommands: [List.self, Console.self, Exec.self, Stop.self])

    /// Every guest with a run directory: (topology, host, directory).
    static func all() throws -> [(String, String, String)] {
        var out: [(String, String, String)] = []
        for t in try GuestDirectory.topologies() {
            for h in try GuestDirectory.hosts(topology: t) { out.append((t.rawValue, h.rawValue, GuestDirectory.path(topology: t, host: h))) }
        }
        return out
    }

    /// `TOPOLOGY/HOST`, or a host name that only one topology has — each part validated like a
    /// name in a topology file.
    static func find(_ name: String) throws -> String {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        do {
            guard parts.count <= 2 else { throw InvalidValue("\(InvalidValue.quoted(name)) is not TOPOLOGY/HOST or HOST") }
            if parts.count == 2 { _ = try TopologyName(validating: parts[0]) }
            _ = try ObjectName(validating: parts[parts.count - 1], "host")
        } catch {
            throw ValidationError("\(error)")
        }
        let matches = try all().filter { "\($0.0)/\($0.1)" == name || (parts.count == 1 && $0.1 == name) }
        guard matches.count == 1 else {
            throw ValidationError(matches.isEmpty ? "no guest \(name) (see `quiver vm list`)" : "\(name) is ambiguous; write TOPOLOGY/HOST")
        }
        return matches[0].2
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "NAME STATE PID ACCEL BACKEND UID CGROUP AGENT NICS, the addresses each guest reports, its confinement and notices.")
        @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format")) var output: OutputFormat = .table

        func run() throws {
            let rows = try VMCommand.all().compactMap { t, h, dir in VMLauncher.status(directory: dir).map { ("\(t)/\(h)", $0, VMLauncher.agentStatus($0)) } }
            // Guests a running daemon supervises that have no run record (one whose restart
            // failed, or not started yet): listed too, stopped, with why.
            let listed = Set(rows.map(\.0))
            let supervised = DaemonStatus.load().flatMap { $0.running ? $0.status.guests : nil } ?? []
            let unlisted = supervised.filter { !listed.contains("\($0.topology)/\($0.host)") }
            switch output {
            case .json:
                struct Row: Encodable {
                    var name: String; var state: String; var pid: Int32?; var accel: String?; var backend: String?; var nics: [VMNIC] = []; var notices: [String] = []
                    var confinement: Confinement?; var agent: AgentStatus?
                    /// The daemon's supervision of it (restarts, last exit), when a daemon runs.
                    var daemon: GuestWatch?
                }
                print(try renderJSON(rows.map { Row(name: $0.0, state: $0.1.state, pid: $0.1.record.pid, accel: $0.1.record.accel.rawValue,
                                                    backend: $0.1.record.backend.rawValue, nics: $0.1.record.nics, notices: $0.1.record.notices,
                                                    confinement: $0.1.record.confinement, agent: $0.2,
                                                    daemon: DaemonStatus.guest(topology: String($0.0.split(separator: "/")[0]), host: String($0.0.split(separator: "/")[1]))) }
                    + unlisted.map { Row(name: "\($0.topology)/\($0.host)", state: "stopped", daemon: $0) }))
            case .table:
                var t = Table(["NAME", "STATE", "PID", "RESTARTS", "LAST EXIT", "ACCEL", "BACKEND", "UID", "CGROUP", "AGENT", "NICS"])
                for (name, s, agent) in rows {
                    let c = s.record.confinement
                    // What a running daemon knows of the guest (restart: policies, docs/DAEMON.md).
                    let parts = name.split(separator: "/").map(String.init)
                    let w = DaemonStatus.guest(topology: parts[0], host: parts[1])
                    t.add([name, s.state, String(s.record.pid), w.map { "\($0.restarts)" } ?? "-", w?.lastExit?.rawValue ?? "-", s.record.accel.rawValue, s.record.backend.rawValue,
                           c.map { String($0.uid) } ?? "root", c.map { _ in "quiver/" + s.record.name } ?? "-",
                           agent.kind == "none" ? "none" : "\(agent.kind): \(agent.state)",
                           s.record.nics.map { "\($0.guestDevice)=\($0.tap)(\($0.device.map { "\($0),"} ?? "")\($0.mac)\($0.queues > 1 ? ",\($0.queues)q" : ""))" }.joined(separator: " ")])
                }
                for w in unlisted {
                    t.add(["\(w.topology)/\(w.host)", "stopped", "-", "\(w.restarts)", w.lastExit?.rawValue ?? "-", "-", "-", "-", "-", "-", "-"])
                }
                print(t.render())
                for w in unlisted { if let r = w.reason { print("\(w.topology)/\(w.host): daemon: \(r)") } }
                for (name, s, agent) in rows {
                    if !agent.interfaces.isEmpty {
                        print("\(name): guest reports " + agent.interfaces.filter { $0.name != "lo" }
                            .map { "\($0.name) \($0.mac ?? "-") " + ($0.addresses.isEmpty ? "no address" : $0.addresses.joined(separator: " ")) }.joined(separator: "; "))
                    }
                    if let r = DaemonStatus.guest(topology: String(name.split(separator: "/")[0]), host: String(name.split(separator: "/")[1]))?.reason {
                        print("\(name): daemon: \(r)")
                    }
                    print("\(name): " + (s.record.confinement.map { "jailed: \($0.summary)" } ?? "not confined: qemu runs as root in the host's namespaces"))
                }
                for n in Set(rows.flatMap { $0.1.record.notices }).sorted() { print("note: \(n)") }
            }
        }
    }

    struct Console: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "console",
                                                        abstract: "Follow a guest's serial console (until interrupted or the guest stops).")
        @Argument(help: "TOPOLOGY/HOST, or HOST.") var name: String
        @Flag(inversion: .prefixedNo, help: "Keep printing what the guest writes; --no-follow prints the log so far and exits.")
        var follow = true

        func run() throws {
            let dir = try VMCommand.find(name)
            guard let fd = try GuestDirectory.open(dir, create: false)?.openForReading(GuestDirectory.Entry.console.rawValue) else {
                throw ValidationError("no console log at \(dir)/console.log")
            }
            let h = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            FileHandle.standardOutput.write(h.readDataToEndOfFile())
            while follow {
                Thread.sleep(forTimeInterval: 0.2)
                FileHandle.standardOutput.write(h.readDataToEndOfFile())
                // A stopped guest writes nothing more.
                if VMLauncher.status(directory: dir).map({ !VMLauncher.isAlive($0.record) }) ?? true {
                    FileHandle.standardOutput.write(h.readDataToEndOfFile())
                    return
                }
            }
        }
    }

    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "exec",
            abstract: "Run a program inside a guest through qemu-guest-agent (guest-exec): its output, then its exit status as quiver's.",
            discussion: "The program and its arguments go to the guest as a list, never through a shell: `quiver vm exec lab/deb -- ip -br addr`.")
        @Argument(help: "TOPOLOGY/HOST, or HOST.") var name: String
        @Argument(parsing: .postTerminator, help: "The program (an absolute path, or a name the guest's agent finds on its PATH) and its arguments.")
        var command: [String] = []
        @Option(help: "Seconds to wait for it.") var timeout: Double = 60

        func validate() throws {
            guard !command.isEmpty else { throw ValidationError("name the program to run after `--`") }
            guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be above 0 and at most 3600 seconds") }
        }

        func run() throws {
            let dir = try VMCommand.find(name)
            guard let s = VMLauncher.status(directory: dir), s.state != "stopped" else { throw ValidationError("\(name) is not running") }
            guard s.record.spec?.agentKind == .qga else { throw ValidationError("\(name) has no qemu-guest-agent (`agent: qga`)") }
            let agent = try QGAClient(socketPath: GuestDirectory.file(.guestAgent, in: dir), timeout: 5)
            let r = try agent.exec(command[0], Array(command.dropFirst()), timeout: timeout)
            FileHandle.standardOutput.write(Data(r.stdout.utf8))
            FileHandle.standardError.write(Data(r.stderr.utf8))
            if r.status != 0 { throw ExitCode(r.status) }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "stop", abstract: "qemu-guest-agent's guest-shutdown (when it answers), else QMP system_powerdown, then quit, then SIGKILL.")
        @Argument(help: "TOPOLOGY/HOST, or HOST.") var name: String
        @Option(help: "Seconds to wait after powerdown before quit.") var timeout: Double = 3

        func run() throws {
            let dir = try VMCommand.find(name)
            print(try VMLauncher.stop(directory: dir, powerdownTimeout: timeout) ? "\(name): stopped" : "\(name): was not running")
        }
    }
}
