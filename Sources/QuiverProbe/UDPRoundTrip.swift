import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink

/// Round-trip times of small UDP datagrams between two namespaces: an echo server in `to`, a
/// client in `from` sending one datagram every `interval`. Bounded: `count` datagrams, each
/// waited for at most `timeout`.
public struct UDPRoundTrip: Sendable {
    public var from: NetworkNamespace
    public var to: NetworkNamespace
    public var address: IPAddress
    public var port: UInt16
    public var count: Int
    public var interval: Double
    public var timeout: Double = 1

    public init(from: NetworkNamespace, to: NetworkNamespace, address: IPAddress, port: UInt16 = 7007,
                count: Int = 200, interval: Double = 0.01) {
        self.from = from
        self.to = to
        self.address = address
        self.port = port
        self.count = count
        self.interval = interval
    }

    public struct Result: Sendable {
        /// Seconds, one per answered datagram, in send order.
        public var rtts: [Double]
        public var lost: Int

        /// Nearest-rank percentile, seconds.
        public func percentile(_ p: Double) -> Double {
            guard !rtts.isEmpty else { return .nan }
            let s = rtts.sorted()
            let rank = Int((p / 100 * Double(s.count)).rounded(.up))
            return s[max(0, min(s.count - 1, rank - 1))]
        }
    }

    public func run() throws -> Result {
        let server = try Sockets.open(in: to, SOCK_DGRAM, for: address, bindPort: port, what: "udp echo server")
        let client: Int32
        do {
            client = try Sockets.open(in: from, SOCK_DGRAM, for: address, what: "udp client")
        } catch {
            close(server)
            throw error
        }
        defer { close(client) }
        Sockets.setTimeout(server, seconds: 0.2)
        Sockets.setTimeout(client, seconds: timeout)
        guard Sockets.connect(client, address, port) == 0 else {
            close(server)
            throw SystemCallError("connect udp", "\(address) port \(port)", errno: .init(rawValue: errno))
        }
        let stop = StopFlag()
        let echo = Thread {
            var buf = [UInt8](repeating: 0, count: 2048)
            var peer = sockaddr_storage()
            while !stop.isSet {
                var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let n = withUnsafeMutablePointer(to: &peer) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(server, &buf, buf.count, 0, $0, &len) }
                }
                if n > 0 {
                    _ = withUnsafePointer(to: &peer) { p in
                        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(server, buf, n, 0, $0, len) }
                    }
                }
            }
            close(server)
        }
        echo.start()
        defer { stop.set() }

        var rtts: [Double] = []
        var lost = 0
        var buf = [UInt8](repeating: 0, count: 64)
        for seq in 0..<count {
            let start = Sockets.now()
            var payload = [UInt8](repeating: 0, count: 64)
            withUnsafeBytes(of: UInt32(seq).bigEndian) { payload.replaceSubrange(0..<4, with: $0) }
            _ = send(client, payload, payload.count, 0)
            var answered = false
            while Sockets.now() - start < timeout {
                let n = recv(client, &buf, buf.count, 0)
                if n < 0 { break }
                if n >= 4, buf[0..<4].elementsEqual(payload[0..<4]) { answered = true; break }
            }
            if answered { rtts.append(Sockets.now() - start) } else { lost += 1 }
            let wait = interval - (Sockets.now() - start)
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
        }
        return Result(rtts: rtts, lost: lost)
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
