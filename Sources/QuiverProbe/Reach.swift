import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink
import SystemPackage

/// Bounded reachability probes run from inside a namespace: ICMP echo, TCP connect, ARP.
/// Each answers whether the target answered, with a short note of what was seen.
public enum Reach {
    public struct Outcome: Sendable, Equatable {
        public var answered: Bool
        public var detail: String
        public init(answered: Bool, detail: String) {
            self.answered = answered
            self.detail = detail
        }
    }

    /// Up to `count` ICMP (IPv4) or ICMPv6 echo requests from `ns` to `target`, `timeout` seconds
    /// each, over a raw socket: an answer is an echo reply from `target` with this probe's
    /// identifier. (The kernel fills in an ICMPv6 checksum itself and hands replies over without
    /// their IPv6 header; IPv4 replies come with theirs.) IPv6 neighbour discovery runs first, as
    /// it does for any IPv6 traffic.
    public static func icmpEcho(from ns: NetworkNamespace, to target: IPAddress, count: Int = 3, timeout: Double = 0.5) throws -> Outcome {
        let v4 = target.isV4
        let fd = try ns.run { () throws -> Int32 in
            let fd = socket(v4 ? AF_INET : AF_INET6, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6))
            guard fd >= 0 else { throw SystemCallError(v4 ? "socket(ICMP)" : "socket(ICMPv6)", "\(ns)", errno: .init(rawValue: errno)) }
            return fd
        }
        defer { close(fd) }
        let id = UInt16.random(in: 1...0xFFFF)
        for seq in 0..<UInt16(count) {
            var packet: [UInt8] = [v4 ? 8 : 128, 0, 0, 0, UInt8(id >> 8), UInt8(id & 0xff), UInt8(seq >> 8), UInt8(seq & 0xff)]
            packet += Array("quiver-verify".utf8)
            if v4 {
                let c = Frames.checksum(packet)
                packet[2] = UInt8(c >> 8)
                packet[3] = UInt8(c & 0xff)
            }
            let sent = Sockets.withSockaddr(target, 0) { sa, len in packet.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, len) } }
            guard sent == packet.count else { continue }
            let deadline = Sockets.now() + timeout
            var buf = [UInt8](repeating: 0, count: 1500)
            while Sockets.now() < deadline {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, Int32(max(1, (deadline - Sockets.now()) * 1000))) <= 0 { break }
                var from = sockaddr_in6()
                var len = socklen_t(MemoryLayout<sockaddr_in6>.size)
                let n = withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, Int32(MSG_DONTWAIT), $0, &len) }
                }
                // Where the ICMP header starts, and who sent it.
                let at: Int, source: [UInt8]
                if v4 {
                    guard n >= 28 else { continue }
                    (at, source) = (Int(buf[0] & 0x0f) * 4, Array(buf[12..<16]))
                } else {
                    (at, source) = (0, withUnsafeBytes(of: from.sin6_addr) { Array($0) })
                }
                guard n >= at + 8, source == target.bytes, buf[at] == (v4 ? 0 : 129),
                      UInt16(buf[at + 4]) << 8 | UInt16(buf[at + 5]) == id else { continue }
                return Outcome(answered: true, detail: "echo reply \(seq + 1)/\(count)")
            }
        }
        return Outcome(answered: false, detail: "no echo reply to \(count) requests")
    }

    /// A TCP connect from `ns` to `target`:`port`. If nothing listens there, a listener is opened
    /// in `targetNamespace` for the probe (and closed after).
    public static func tcpConnect(from ns: NetworkNamespace, to target: IPAddress, port: UInt16, targetNamespace: NetworkNamespace?,
                                  timeout: Double = 1) throws -> Outcome {
        let listener = try targetNamespace.map { try listen(in: $0, on: target, port: port) }
        defer { listener?.close() }
        let fd = try Sockets.open(in: ns, SOCK_STREAM, for: target, what: "probe")
        defer { close(fd) }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        let rc = Sockets.connect(fd, target, port)
        if rc == 0 { return Outcome(answered: true, detail: "connected to port \(port)") }
        guard errno == EINPROGRESS else { return Outcome(answered: false, detail: "connect: \(Errno(rawValue: errno).symbolicDescription)") }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, Int32(timeout * 1000)) > 0 else { return Outcome(answered: false, detail: "no answer to SYN in \(timeout) s") }
        var err: Int32 = 0
        var len = socklen_t(4)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        if err == 0 { return Outcome(answered: true, detail: "connected to port \(port)") }
        // A refusal is an answer from the target's stack: it is reachable.
        if err == ECONNREFUSED { return Outcome(answered: true, detail: "port \(port) refused (the host answered)") }
        return Outcome(answered: false, detail: "connect: \(Errno(rawValue: err).symbolicDescription)")
    }

    /// A listener for a TCP probe, if the port is free (if it is taken, something already listens).
    public final class Listener: @unchecked Sendable {
        private var fd: Int32?
        init(_ fd: Int32?) { self.fd = fd }
        deinit { close() }
        /// Idempotent.
        public func close() {
            if let fd { Glibc.close(fd) }
            fd = nil
        }
    }

    public static func listen(in ns: NetworkNamespace, on address: IPAddress, port: UInt16) throws -> Listener {
        let fd = try? Sockets.open(in: ns, SOCK_STREAM, for: address, bindPort: port, reuseAddress: true, what: "probe listener")
        if let fd { Glibc.listen(fd, 4) }
        return Listener(fd)
    }

    /// An ARP request for `target` from `ns`'s `device` (sender: `senderMAC`/`senderIP`); answered
    /// when an ARP reply for `target` comes back.
    public static func arp(from ns: NetworkNamespace, device: String, senderMAC: MACAddress, senderIP: IPAddress, target: IPAddress,
                           count: Int = 3, timeout: Double = 0.5) throws -> Outcome {
        let s = try PacketSocket(in: ns, device: device)
        for i in 0..<count {
            s.drain()
            s.send(Frames.arpRequest(ethernetSource: senderMAC, senderMAC: senderMAC, senderIP: senderIP, target: target))
            let deadline = Sockets.now() + timeout
            while Sockets.now() < deadline {
                guard let f = s.receive(timeout: deadline - Sockets.now()) else { break }
                // Ethernet type ARP, opcode 2 (reply), sender protocol address = target.
                if f.count >= 42, f[12] == 0x08, f[13] == 0x06, f[20] == 0, f[21] == 2, Array(f[28..<32]) == target.bytes {
                    return Outcome(answered: true, detail: "ARP reply from \(MACAddress.format(Array(f[22..<28]))) (\(i + 1)/\(count))")
                }
            }
        }
        return Outcome(answered: false, detail: "no ARP reply to \(count) requests")
    }
}

extension PacketSocket {
    /// The next frame that arrived (not one this socket sent), or nil after `timeout` seconds.
    public func receive(timeout: Double) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: 2048)
        var sll = sockaddr_ll()
        let deadline = Sockets.now() + timeout
        while Sockets.now() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(max(1, (deadline - Sockets.now()) * 1000))) <= 0 { return nil }
            var len = socklen_t(MemoryLayout<sockaddr_ll>.size)
            let n = withUnsafeMutablePointer(to: &sll) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, Int32(MSG_DONTWAIT), $0, &len) }
            }
            if n > 0, sll.sll_pkttype != UInt8(PACKET_OUTGOING) { return Array(buf[0..<n]) }
        }
        return nil
    }
}

extension MACAddress {
    static func format(_ b: [UInt8]) -> String { (try? MACAddress(bytes: b))?.description ?? "?" }
}
