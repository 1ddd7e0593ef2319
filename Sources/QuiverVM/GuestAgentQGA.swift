import Foundation
import QuiverKernel
import QuiverNetlink

/// Something that runs shell command lines inside a guest and gives back their status and
/// output: the test guest's agent, or qemu-guest-agent's `guest-exec`.
public protocol GuestShell: AnyObject {
    func run(_ command: String, timeout: Double) throws -> GuestAgent.Answer
    /// What answers, for rows that say what ran (`busybox`, `qemu-guest-agent`).
    var name: String { get }
}

extension GuestAgent: GuestShell {
    public var name: String { "the test guest's agent (busybox)" }
}

/// A client of qemu-guest-agent on the guest's `org.qemu.guest_agent.0` channel (`qga.sock` in
/// its run directory): JSON commands, one per line, each answered by `{"return": …}` or
/// `{"error": …}`. A conversation starts with `guest-sync-delimited`, which skips whatever an
/// earlier client left unread. Only the agent's documented commands are used:
/// `guest-ping`, `guest-exec`/`guest-exec-status`, `guest-network-get-interfaces`,
/// `guest-shutdown`.
public final class QGAClient: GuestShell {
    let fd: Int32
    private var pending = Data()
    public var name: String { "qemu-guest-agent" }

    /// Connects and synchronizes, within `timeout` seconds.
    public init(socketPath: String, timeout: Double = 3) throws {
        fd = try UnixSocket.connect(socketPath, timeout: 1)
        do { try sync(timeout: timeout) } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    /// Waits until the agent in the guest answers (the guest has booted as far as starting it).
    public static func waitReady(socketPath: String, timeout: Double) throws -> QGAClient {
        let deadline = Date().addingTimeInterval(timeout)
        var last: Error = AgentTimeout(command: "guest-sync-delimited", seconds: timeout)
        while Date() < deadline {
            do { return try QGAClient(socketPath: socketPath, timeout: min(3, max(0.5, deadline.timeIntervalSinceNow))) } catch { last = error }
            Thread.sleep(forTimeInterval: 0.5)
        }
        throw last
    }

    /// `guest-sync-delimited` with a random id: the answer is preceded by a 0xFF byte; anything
    /// before it (an earlier client's leftovers) is dropped.
    func sync(timeout: Double) throws {
        let id = Int.random(in: 1...Int(Int32.max))
        try UnixSocket.writeAll(fd, Data([0xFF]) + Self.command("guest-sync-delimited", ["id": id]))
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let i = pending.firstIndex(of: 0xFF) { pending.removeSubrange(pending.startIndex...i) }
            while let line = takeLine() {
                if let o = try? JSONSerialization.jsonObject(with: line) as? [String: Any], (o["return"] as? Int) == id { return }
            }
            try readMore(until: deadline)
        }
        throw AgentTimeout(command: "guest-sync-delimited", seconds: timeout)
    }

    /// Runs `command` with `arguments`; returns its `return` value.
    @discardableResult
    public func execute(_ command: String, _ arguments: [String: Any]? = nil, timeout: Double = 5) throws -> Any {
        try UnixSocket.writeAll(fd, Self.command(command, arguments))
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            while let line = takeLine() {
                guard let o = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else { continue }
                if let e = o["error"] as? [String: Any] {
                    throw VMError("qemu-guest-agent: \(command): \(e["desc"] as? String ?? "\(e)")")
                }
                if let r = o["return"] { return r }
            }
            try readMore(until: deadline)
        }
        throw AgentTimeout(command: command, seconds: timeout)
    }

    /// Runs `path` with `arguments` in the guest (`guest-exec`, output captured) and waits for it
    /// (`guest-exec-status`), at most `timeout` seconds.
    public func exec(_ path: String, _ arguments: [String], timeout: Double) throws -> (status: Int32, stdout: String, stderr: String) {
        let started = try execute("guest-exec", ["path": path, "arg": arguments, "capture-output": true])
        guard let pid = (started as? [String: Any])?["pid"] as? Int else { throw VMError("qemu-guest-agent: guest-exec gave no pid") }
        let deadline = Date().addingTimeInterval(timeout)
        var delay = 0.02
        while Date() < deadline {
            let s = try execute("guest-exec-status", ["pid": pid]) as? [String: Any] ?? [:]
            if s["exited"] as? Bool == true {
                func text(_ key: String) -> String {
                    (s[key] as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? ""
                }
                let status = (s["exitcode"] as? Int).map(Int32.init) ?? (s["signal"] as? Int).map { 128 + Int32($0) } ?? -1
                return (status, text("out-data"), text("err-data"))
            }
            Thread.sleep(forTimeInterval: delay)
            delay = min(0.2, delay * 1.5)
        }
        throw AgentTimeout(command: "guest-exec \(path)", seconds: timeout)
    }

    /// A shell command line, through `/bin/sh -c` in the guest.
    public func run(_ command: String, timeout: Double) throws -> GuestAgent.Answer {
        let r = try exec("/bin/sh", ["-c", command], timeout: timeout)
        return GuestAgent.Answer(status: r.status, output: (r.stdout + r.stderr).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The guest's NICs as it reports them (`guest-network-get-interfaces`).
    public func interfaces() throws -> [GuestInterface] {
        guard let list = try execute("guest-network-get-interfaces") as? [[String: Any]] else { return [] }
        return list.map { i in
            let addresses = (i["ip-addresses"] as? [[String: Any]] ?? []).compactMap { a -> String? in
                guard let ip = a["ip-address"] as? String, let p = a["prefix"] as? Int else { return nil }
                return "\(ip)/\(p)"
            }
            return GuestInterface(name: i["name"] as? String ?? "?", mac: i["hardware-address"] as? String, addresses: addresses)
        }
    }

    /// The content of a file in the guest (`guest-file-open`/`-read`/`-close`), at most `limit`
    /// bytes: no program runs for it.
    public func readFile(_ path: String, limit: Int = 1 << 20) throws -> Data {
        guard let handle = try execute("guest-file-open", ["path": path, "mode": "r"]) as? Int else {
            throw VMError("qemu-guest-agent: guest-file-open \(path) gave no handle")
        }
        defer { _ = try? execute("guest-file-close", ["handle": handle]) }
        var data = Data()
        while data.count <= limit {
            let r = try execute("guest-file-read", ["handle": handle, "count": 65536]) as? [String: Any] ?? [:]
            if let b = (r["buf-b64"] as? String).flatMap({ Data(base64Encoded: $0) }) { data.append(b) }
            if r["eof"] as? Bool ?? true { return data }
        }
        throw VMError("qemu-guest-agent: \(path) is larger than \(limit) bytes")
    }

    /// The guest's default routes, IPv4 and IPv6, read from its kernel's route tables
    /// (`/proc/net/route`, `/proc/net/ipv6_route`).
    public func defaultRoutes() throws -> [GuestRoute] {
        GuestRoute.defaults(ipv4: String(decoding: try readFile("/proc/net/route"), as: UTF8.self),
                            ipv6: String(decoding: try readFile("/proc/net/ipv6_route"), as: UTF8.self))
    }

    /// Asks the guest to power off (`guest-shutdown`). The agent answers only when it could not
    /// (its `shutdown` failed, say for want of D-Bus): that error is thrown; silence for
    /// `errorWithin` seconds means the guest is on its way down.
    public func shutdown(errorWithin: Double = 2) throws {
        do {
            try execute("guest-shutdown", ["mode": "powerdown"], timeout: errorWithin)
        } catch is AgentTimeout {
            return
        } catch let e as SystemCallError where e.errno == .connectionReset {
            return  // the guest went down and took the channel with it
        }
    }

    static func command(_ name: String, _ arguments: [String: Any]?) -> Data {
        var o: [String: Any] = ["execute": name]
        if let arguments { o["arguments"] = arguments }
        return ((try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data()) + Data("\n".utf8)
    }

    private func takeLine() -> Data? {
        guard let nl = pending.firstIndex(of: 0x0A) else { return nil }
        let line = pending[pending.startIndex..<nl]
        pending.removeSubrange(pending.startIndex...nl)
        return Data(line)
    }

    private func readMore(until deadline: Date) throws {
        guard pending.count < 16 << 20 else { throw VMError("qemu-guest-agent sent more than 16 MiB without an answer") }
        do { pending.append(try UnixSocket.readSome(fd)) } catch let e as SystemCallError where e.errno == .resourceTemporarilyUnavailable {
            Thread.sleep(forTimeInterval: 0.01)
        }
    }
}

/// A NIC as the guest reports it.
public struct GuestInterface: Sendable, Codable, Equatable {
    public var name: String
    public var mac: String?
    /// `address/prefix`, IPv4 and IPv6, link-local ones included.
    public var addresses: [String]
}

/// A default route in a guest: its gateway and the NIC it leaves by.
public struct GuestRoute: Sendable, Equatable {
    public var gateway: IPAddress
    public var device: String

    public init(gateway: IPAddress, device: String) {
        self.gateway = gateway
        self.device = device
    }

    /// The default routes (destination 0, prefix 0, with a gateway) in the text of Linux's
    /// `/proc/net/route` (addresses as little-endian hex words) and `/proc/net/ipv6_route`
    /// (addresses as 32 hex digits in network order).
    public static func defaults(ipv4: String, ipv6: String) -> [GuestRoute] {
        func bytes(_ hex: Substring) -> [UInt8]? {
            guard hex.count % 2 == 0 else { return nil }
            var out: [UInt8] = []
            var i = hex.startIndex
            while i < hex.endIndex {
                let j = hex.index(i, offsetBy: 2)
                guard let b = UInt8(hex[i..<j], radix: 16) else { return nil }
                out.append(b)
                i = j
            }
            return out
        }
        var routes: [GuestRoute] = []
        // Iface Destination Gateway Flags RefCnt Use Metric Mask …; RTF_GATEWAY is 0x2.
        for line in ipv4.split(separator: "\n").dropFirst() {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 8, f[1] == "00000000", f[7] == "00000000", let flags = UInt32(f[3], radix: 16), flags & 0x2 != 0,
                  let g = bytes(f[2]), g.count == 4, let gw = try? IPAddress(bytes: g.reversed()) else { continue }
            routes.append(GuestRoute(gateway: gw, device: String(f[0])))
        }
        // dest plen src srclen nexthop metric refcnt use flags iface
        for line in ipv6.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 10, f[0] == String(repeating: "0", count: 32), f[1] == "00", let g = bytes(f[4]), g.count == 16, g.contains(where: { $0 != 0 }),
                  let gw = try? IPAddress(bytes: g) else { continue }
            routes.append(GuestRoute(gateway: gw, device: String(f[9])))
        }
        return routes
    }
}

/// What a guest's agent says, for `quiver vm list`.
public struct AgentStatus: Sendable, Codable, Equatable {
    /// `qga`, `quiver` or `none`.
    public var kind: String
    /// `answers`, `no answer` (booting, or no agent running in the guest), or `-` (not asked).
    public var state: String
    /// The guest's NICs as it reports them (qemu-guest-agent only).
    public var interfaces: [GuestInterface]
}

extension VMLauncher {
    /// Asks a running guest's agent whether it answers and, qemu-guest-agent, what addresses the
    /// guest has (`guest-network-get-interfaces`), waiting at most `timeout` seconds.
    public static func agentStatus(_ s: VMStatus, timeout: Double = 1.5) -> AgentStatus {
        let kind = s.record.spec?.agentKind ?? .quiver
        guard s.state != "stopped" else { return AgentStatus(kind: kind.rawValue, state: "-", interfaces: []) }
        switch kind {
        case .qga:
            guard let c = try? QGAClient(socketPath: GuestDirectory.file(.guestAgent, in: s.record.directory), timeout: timeout) else {
                return AgentStatus(kind: kind.rawValue, state: "no answer", interfaces: [])
            }
            return AgentStatus(kind: kind.rawValue, state: "answers", interfaces: (try? c.interfaces()) ?? [])
        case .quiver:
            let ok = (try? GuestAgent(socketPath: GuestDirectory.file(.agent, in: s.record.directory)).run("true", timeout: timeout).status) == 0
            return AgentStatus(kind: kind.rawValue, state: ok ? "answers" : "no answer", interfaces: [])
        case .none:
            return AgentStatus(kind: kind.rawValue, state: "-", interfaces: [])
        }
    }
}
