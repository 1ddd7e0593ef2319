import Foundation
import QuiverKernel
import QuiverNetlink
import SystemPackage

/// A QMP connection (qemu's JSON machine protocol) over its unix socket: greeting, then
/// `qmp_capabilities`, then one command at a time. Events in between are skipped.
public final class QMPClient {
    let fd: Int32
    private var pending = Data()

    public init(socketPath: String, timeout: Double = 5) throws {
        fd = try UnixSocket.connect(socketPath, timeout: timeout)
        do {
            _ = try readMessage()                         // {"QMP": {...}}
            _ = try execute("qmp_capabilities")
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit { Glibc.close(fd) }

    /// Runs a command and returns its `return` value; a QMP `error` becomes `QMPError`.
    @discardableResult
    public func execute(_ command: String, arguments: [String: Any]? = nil) throws -> Any? {
        var msg: [String: Any] = ["execute": command]
        if let arguments { msg["arguments"] = arguments }
        var data = try JSONSerialization.data(withJSONObject: msg)
        data.append(0x0A)
        try UnixSocket.writeAll(fd, data)
        while true {
            let reply = try readMessage()
            if reply["event"] != nil { continue }
            if let e = reply["error"] as? [String: Any] {
                throw QMPError(command: command, message: "\(e["class"] ?? "Error"): \(e["desc"] ?? "")")
            }
            return reply["return"]
        }
    }

    /// `query-status`: "running", "paused", "shutdown", …
    public func status() throws -> String {
        ((try execute("query-status")) as? [String: Any])?["status"] as? String ?? "unknown"
    }

    func readMessage() throws -> [String: Any] {
        while true {
            if let nl = pending.firstIndex(of: 0x0A) {
                let line = pending[pending.startIndex..<nl]
                pending.removeSubrange(pending.startIndex...nl)
                if line.isEmpty { continue }
                guard let obj = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                    throw QMPError(command: "read", message: "not a JSON object")
                }
                return obj
            }
            pending.append(try UnixSocket.readSome(fd))
        }
    }
}

public struct QMPError: Error, Sendable, CustomStringConvertible {
    public var command: String
    public var message: String
    public var description: String { "QMP \(command): \(message)" }
}

/// Unix stream sockets with timeouts, for QMP and the guest agent.
enum UnixSocket {
    static func connect(_ path: String, timeout: Double) throws -> Int32 {
        let fd = try open(path)
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        try at(path, fd, "connect") { Glibc.connect(fd, $0, $1) == 0 }
        return fd
    }

    /// A socket listening at `name` in `directory` (a stale socket of an earlier start is
    /// replaced): what a jailed qemu is handed instead of a path to make its own.
    static func listen(_ name: String, in directory: TrustedDirectory) throws -> FileDescriptor {
        let path = directory.childPath(name)
        let fd = try open(path)
        do { try directory.remove(name) } catch {
            Glibc.close(fd)
            throw error
        }
        try at(path, fd, "bind") { Glibc.bind(fd, $0, $1) == 0 && Glibc.listen(fd, 4) == 0 }
        return FileDescriptor(rawValue: fd)
    }

    static func open(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError("socket(AF_UNIX)", path, errno: Errno(rawValue: errno)) }
        return fd
    }

    /// Runs `call` with `path` as a socket address; on failure closes `fd` and throws, naming `what`.
    static func at(_ path: String, _ fd: Int32, _ what: String, _ call: (UnsafePointer<sockaddr>, socklen_t) -> Bool) throws {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Glibc.close(fd)
            throw SystemCallError(what, "\(path): path too long", errno: .fileNameTooLong)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok else {
            let e = errno
            Glibc.close(fd)
            throw SystemCallError(what, path, errno: Errno(rawValue: e))
        }
    }

    static func writeAll(_ fd: Int32, _ data: Data) throws {
        var off = 0
        while off < data.count {
            let n = data[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("send", errno: Errno(rawValue: errno))
            }
            off += n
        }
    }

    static func readSome(_ fd: Int32) throws -> Data {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n > 0 { return Data(buf[0..<n]) }
            if n == 0 { throw SystemCallError("recv", "peer closed", errno: .connectionReset) }
            if errno == EINTR { continue }
            throw SystemCallError("recv", errno: Errno(rawValue: errno))
        }
    }
}
