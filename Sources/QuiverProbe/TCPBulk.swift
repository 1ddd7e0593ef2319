import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink

/// A bulk TCP transfer between two namespaces, measured at the receiver: Quiver's built-in
/// traffic generator. Bounded in time: the sender stops at the deadline, every socket has a
/// timeout, and the whole run ends by `duration + 3 s` whatever the network does.
public struct TCPBulk: Sendable {
    public var from: NetworkNamespace
    public var to: NetworkNamespace
    /// Where the receiver listens (an address inside `to`).
    public var address: IPAddress
    public var port: UInt16
    public var duration: Double
    /// Time excluded at the start (slow start, the shaper's first burst).
    public var warmup: Double
    /// Receiver samples: cumulative bytes every `interval` seconds.
    public var interval: Double = 0.1

    public init(from: NetworkNamespace, to: NetworkNamespace, address: IPAddress, port: UInt16 = 5201,
                duration: Double = 3, warmup: Double = 1) {
        self.from = from
        self.to = to
        self.address = address
        self.port = port
        self.duration = duration
        self.warmup = warmup
    }

    public struct Result: Sendable {
        /// (seconds since the first byte, cumulative bytes), every `interval`.
        public var samples: [(Double, UInt64)]
        public var totalBytes: UInt64
        /// Goodput after the warm-up, bits per second.
        public var bitsPerSecond: Double
        /// True if the connection ran to the end without an error.
        public var completed: Bool

        /// Goodput between two times (seconds since the first byte).
        public func rate(from t0: Double, to t1: Double) -> Double {
            guard let a = samples.first(where: { $0.0 >= t0 }), let b = samples.last(where: { $0.0 <= t1 }),
                  b.0 > a.0 else { return 0 }
            return Double(b.1 - a.1) * 8 / (b.0 - a.0)
        }
    }

    /// Runs the transfer; `during` is called (on another thread) once the data flows, at
    /// `duringAt` seconds, e.g. to change a cap mid-stream.
    public func run(duringAt: Double? = nil, during: (@Sendable () -> Void)? = nil) throws -> Result {
        let sink = try TCPSink(in: to, address: address, port: port, seconds: duration, interval: interval)
        if let duringAt, let during {
            let t = Thread {
                Thread.sleep(forTimeInterval: duringAt)
                during()
            }
            t.start()
        }
        let sent = try TCPSource(from: from, address: address, port: port, seconds: duration).run()
        var r = sink.finish(warmup: warmup, until: duration)
        r.completed = r.completed && sent
        return r
    }
}

/// The sending end of a bulk TCP transfer, inside a namespace: connects (retrying for
/// `connectWithin` seconds while nothing listens yet), sends zeros for `seconds`, then shuts the
/// connection down. The receiver may be anything — a ``TCPSink``, or `nc -l` in a guest.
public struct TCPSource: Sendable {
    public var from: NetworkNamespace
    public var address: IPAddress
    public var port: UInt16
    public var seconds: Double
    public var connectWithin: Double

    public init(from: NetworkNamespace, address: IPAddress, port: UInt16, seconds: Double, connectWithin: Double = 0) {
        self.from = from
        self.address = address
        self.port = port
        self.seconds = seconds
        self.connectWithin = connectWithin
    }

    /// Returns true if every send succeeded until the end.
    public func run() throws -> Bool {
        let giveUp = Sockets.now() + connectWithin
        var sender: Int32 = -1
        while true {
            sender = try Sockets.open(in: from, SOCK_STREAM, for: address, what: "sender")
            Sockets.setTimeout(sender, seconds: 3)
            if Sockets.connect(sender, address, port) == 0 { break }
            let e = errno
            close(sender)
            guard e == ECONNREFUSED, Sockets.now() < giveUp else {
                throw SystemCallError("connect", "\(address) port \(port)", errno: .init(rawValue: e))
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        defer { close(sender) }
        let chunk = [UInt8](repeating: 0x5A, count: 128 * 1024)
        let deadline = Sockets.now() + seconds
        var sendOK = true
        while Sockets.now() < deadline {
            let n = chunk.withUnsafeBytes { send(sender, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                sendOK = false
                break
            }
        }
        shutdown(sender, Int32(SHUT_WR))
        return sendOK
    }
}

/// The receiving end of a bulk TCP transfer, inside a namespace: accepts one connection, reads
/// until the sender stops (or `seconds` + 3 pass), sampling cumulative bytes every `interval`.
/// The sender may be anything — a ``TCPBulk``, or a guest piping `/dev/zero` into `nc`.
public final class TCPSink: @unchecked Sendable {
    private let listener: Int32
    private let box = ResultBox()

    public init(in ns: NetworkNamespace, address: IPAddress, port: UInt16, seconds: Double, interval: Double = 0.1) throws {
        listener = try Sockets.open(in: ns, SOCK_STREAM, for: address, bindPort: port, reuseAddress: true, what: "receiver")
        guard listen(listener, 1) == 0 else {
            let e = errno
            close(listener)
            throw SystemCallError("listen", "\(address) port \(port)", errno: .init(rawValue: e))
        }
        Sockets.setTimeout(listener, seconds: 3 + seconds)
        let listener = self.listener, box = self.box
        Thread {
            let conn = accept(listener, nil, nil)
            guard conn >= 0 else { box.finish(samples: [], total: 0, ok: false); return }
            defer { close(conn) }
            Sockets.setTimeout(conn, seconds: 2)
            var buf = [UInt8](repeating: 0, count: 256 * 1024)
            var total: UInt64 = 0
            var samples: [(Double, UInt64)] = []
            var start: Double?
            var nextSample = 0.0
            let hardStop = Sockets.now() + seconds + 3
            var ok = true
            while Sockets.now() < hardStop {
                let n = recv(conn, &buf, buf.count, 0)
                if n == 0 { break }
                if n < 0 { if errno == EINTR { continue }; ok = false; break }
                let t = Sockets.now()
                if start == nil { start = t; samples.append((0, 0)) }
                total += UInt64(n)
                let since = t - start!
                if since >= nextSample {
                    samples.append((since, total))
                    nextSample = (since / interval).rounded(.down) * interval + interval
                }
            }
            if let s = start { samples.append((Sockets.now() - s, total)) }
            box.finish(samples: samples, total: total, ok: ok)
        }.start()
    }

    deinit { close(listener) }

    /// Waits for the transfer to end; the rate is taken between `warmup` and `until` seconds
    /// after the first byte.
    public func finish(warmup: Double, until: Double, timeout: Double = 4) -> TCPBulk.Result {
        let r = box.wait(timeout: timeout)
        let samples = r?.samples ?? []
        var result = TCPBulk.Result(samples: samples, totalBytes: r?.total ?? 0, bitsPerSecond: 0, completed: r?.ok ?? false)
        result.bitsPerSecond = result.rate(from: warmup, to: until)
        return result
    }
}

final class ResultBox: @unchecked Sendable {
    private let cond = NSCondition()
    private var value: (samples: [(Double, UInt64)], total: UInt64, ok: Bool)?

    func finish(samples: [(Double, UInt64)], total: UInt64, ok: Bool) {
        cond.lock()
        value = (samples, total, ok)
        cond.broadcast()
        cond.unlock()
    }

    func wait(timeout: Double) -> (samples: [(Double, UInt64)], total: UInt64, ok: Bool)? {
        cond.lock()
        defer { cond.unlock() }
        let until = Date(timeIntervalSinceNow: timeout)
        while value == nil { if !cond.wait(until: until) { break } }
        return value
    }
}
