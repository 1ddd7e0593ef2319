import ArgumentParser
import Foundation

@main
struct Quiver: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quiver",
        abstract: "A Crossbow-like virtual network fabric for Linux.",
        subcommands: [ValidateCommand.self, ApplyCommand.self, DestroyCommand.self, ShowCommand.self, ListCommand.self,
                       GraphCommand.self, StatsCommand.self, VerifyCommand.self, VMCommand.self, LinksCommand.self, CapCommand.self, SchemaCommand.self,
                       EnableCommand.self, DisableCommand.self, DaemonCommand.self, StatusCommand.self])

    /// Exit codes: 0 ok, 1 failure, 2 usage or validation error.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if let v = error as? ValidationError {
                // Thrown by a command after parsing: the message says it all, no usage dump.
                FileHandle.standardError.write(Data("quiver: error: \(v.message)\n".utf8))
                Foundation.exit(2)
            }
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            if code.rawValue == ExitCode.validationFailure.rawValue {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            FileHandle.standardError.write(Data("quiver: error: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}
