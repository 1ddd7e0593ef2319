import Foundation
import QuiverNetlink

/// The test guest's agent on its second serial port (see guest/init): one command per line,
/// answered with its output and `@@quiver ID RC`. Commands are busybox shell lines.
public final class GuestAgent {
    let fd: Int32
    private var pending = Data()
    private var nextID = 1

    public init(socketPath: String) throws {
        fd = try UnixSocket.connect(socketPath, timeout: 1)
    }

    deinit { close(fd) }

    public struct Answer: Sendable {
        public var status: Int32
        public var output: String
    }

    /// Runs `command` in the guest; gives up after `timeout` seconds.
    public func run(_ command: String, timeout: Double = 10) throws -> Answer {
        let id = "q\(nextID)"
        nextID += 1
        try UnixSocket.writeAll(fd, Data("\(id) \(command)\n".utf8))
        let deadline = Date().addingTimeInterval(timeout)
        let marker = "@@quiver \(id) "
        while Date() < deadline {
            if let text = String(data: pending, encoding: .utf8), let r = text.range(of: marker),
               let end = text[r.upperBound...].firstIndex(of: "\n") {
                let status = Int32(text[r.upperBound..<end].trimmingCharacters(in: .whitespaces)) ?? -1
                let output = String(text[..<r.lowerBound])
                pending = Data(text[text.index(after: end)...].utf8)
                return Answer(status: status, output: output.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            do { pending.append(try UnixSocket.readSome(fd)) } catch let e as SystemCallError where e.errno == .resourceTemporarilyUnavailable {
                continue
            }
        }
        throw AgentTimeout(command: command, seconds: timeout)
    }

    /// Waits until the agent answers at all (the guest has booted), up to `timeout` seconds.
    public static func waitReady(socketPath: String, timeout: Double) throws -> GuestAgent {
        let deadline = Date().addingTimeInterval(timeout)
        var last: Error = AgentTimeout(command: "true", seconds: timeout)
        while Date() < deadline {
            do {
                let a = try GuestAgent(socketPath: socketPath)
                if try a.run("true", timeout: min(2, max(0.5, deadline.timeIntervalSinceNow))).status == 0 { return a }
            } catch { last = error }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw last
    }
}

public struct AgentTimeout: Error, Sendable, CustomStringConvertible {
    public var command: String
    public var seconds: Double
    public var description: String { "guest agent: no answer to `\(command)` within \(seconds) s" }
}
