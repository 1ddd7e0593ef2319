import ArgumentParser
import Foundation
import QuiverVM

struct VMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm", abstract: "Guests of kind: vm hosts (started by `quiver apply`).",
        subcommands: [List.self, Console.self, Stop.self])

    /// Every guest with a run directory: (topology, host, directory).
    static func all() -> [(String, String, String)] {
        let fm = FileManager.default
        var out: [(String, String, String)] = []
        for t in ((try? fm.contentsOfDirectory(atPath: VMLauncher.runRoot)) ?? []).sorted() {
            for h in ((try? fm.contentsOfDirectory(atPath: "\(VMLauncher.runRoot)/\(t)")) ?? []).sorted() {
                out.append((t, h, "\(VMLauncher.runRoot)/\(t)/\(h)"))
            }
        }
        return out
    }

    /// `TOPOLOGY/HOST`, or a host name that only one topology has.
    static func find(_ name: String) throws -> String {
        let matches = all().filter { "\($0.0)/\($0.1)" == name || $0.1 == name }
        guard matches.count == 1 else {
            throw ValidationError(matches.isEmpty ? "no guest \(name) (see `quiver vm list`)" : "\(name) is ambiguous; write TOPOLOGY/HOST")
        }
        return matches[0].2
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "NAME STATE PID ACCEL BACKEND NICS, and any notices.")
        @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format")) var output: OutputFormat = .table

        func run() throws {
            let rows = VMCommand.all().compactMap { t, h, dir in VMLauncher.status(directory: dir).map { ("\(t)/\(h)", $0) } }
            switch output {
            case .json:
                struct Row: Encodable { var name: String; var state: String; var pid: Int32; var accel: String; var backend: String; var nics: [VMNIC]; var notices: [String] }
                print(try renderJSON(rows.map { Row(name: $0.0, state: $0.1.state, pid: $0.1.record.pid, accel: $0.1.record.accel.rawValue,
                                                    backend: $0.1.record.backend.rawValue, nics: $0.1.record.nics, notices: $0.1.record.notices) }))
            case .table:
                var t = Table(["NAME", "STATE", "PID", "ACCEL", "BACKEND", "NICS"])
                for (name, s) in rows {
                    t.add([name, s.state, String(s.record.pid), s.record.accel.rawValue, s.record.backend.rawValue,
                           s.record.nics.map { "\($0.guestDevice)=\($0.tap)(\($0.device.map { "\($0),"} ?? "")\($0.mac)\($0.queues > 1 ? ",\($0.queues)q" : ""))" }.joined(separator: " ")])
                }
                print(t.render())
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
            let path = dir + "/console.log"
            guard let h = FileHandle(forReadingAtPath: path) else { throw ValidationError("no console log at \(path)") }
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

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "stop", abstract: "QMP system_powerdown, then quit, then SIGKILL.")
        @Argument(help: "TOPOLOGY/HOST, or HOST.") var name: String
        @Option(help: "Seconds to wait after powerdown before quit.") var timeout: Double = 3

        func run() throws {
            let dir = try VMCommand.find(name)
            print(try VMLauncher.stop(directory: dir, powerdownTimeout: timeout) ? "\(name): stopped" : "\(name): was not running")
        }
    }
}
