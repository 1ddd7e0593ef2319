import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink

/// A raw `AF_PACKET` socket on one device inside a namespace: sends hand-made Ethernet frames
/// (forged ones included — that is what protection tests need) and counts frames that arrive.
/// Owns its descriptor.
public final class PacketSocket: @unchecked Sendable {
    public let fd: Int32
    public let ifindex: Int32
    public let device: String

    /// Opens the socket in `ns` bound to `device`, receiving every protocol.
    public init(in ns: NetworkNamespace, device: String) throws {
        self.device = device
        (fd, ifindex) = try ns.run { () throws -> (Int32, Int32) in
            let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(UInt16(ETH_P_ALL).bigEndian))
            guard fd >= 0 else { throw SystemCallError("socket(AF_PACKET)", device, errno: .init(rawValue: errno)) }
            let index = Int32(if_nametoindex(device))
            guard index > 0 else {
                close(fd)
                throw SystemCallError("if_nametoindex", device, errno: .init(rawValue: errno))
            }
            var sll = sockaddr_ll()
            sll.sll_family = UInt16(AF_PACKET)
            sll.sll_protocol = UInt16(ETH_P_ALL).bigEndian
            sll.sll_ifindex = index
            let rc = withUnsafePointer(to: &sll) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_ll>.size)) }
            }
            guard rc == 0 else {
                let e = errno
                close(fd)
                throw SystemCallError("bind(AF_PACKET)", device, errno: .init(rawValue: e))
            }
            // Room for thousands of small frames arriving faster than they are counted.
            var size: Int32 = 16 * 1024 * 1024
            setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, 4)
            return (fd, index)
        }
    }

    deinit { close(fd) }

    /// Sends `frame` `count` times. Returns how many the kernel took.
    @discardableResult
    public func send(_ frame: [UInt8], count: Int = 1) -> Int {
        var sent = 0
        for _ in 0..<count {
            let n = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
            if n == frame.count { sent += 1 }
        }
        return sent
    }

    /// Drops whatever arrived so far.
    public func drain() {
        var buf = [UInt8](repeating: 0, count: 2048)
        while recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT)) > 0 {}
    }

    /// Counts arriving frames (not the ones this socket sent) that contain `marker`, until
    /// `expected` were seen or `seconds` passed since the last one.
    public func count(containing marker: [UInt8], expected: Int = .max, quietSeconds: Double = 0.3) -> Int {
        var buf = [UInt8](repeating: 0, count: 65536)
        var seen = 0
        var sll = sockaddr_ll()
        while seen < expected {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(quietSeconds * 1000)) <= 0 { break }
            var len = socklen_t(MemoryLayout<sockaddr_ll>.size)
            let n = withUnsafeMutablePointer(to: &sll) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buf, buf.count, Int32(MSG_DONTWAIT), $0, &len) }
            }
            guard n > 0, sll.sll_pkttype != UInt8(PACKET_OUTGOING) else { continue }
            if Frames.contains(buf[0..<n], marker) { seen += 1 }
        }
        return seen
    }
}

/// Ethernet frames for probes, built byte by byte. Every builder can append a `marker` so a
/// receiver recognizes the test's own frames among others.
public enum Frames {
    public static let broadcast = MACAddress(0xff, 0xff, 0xff, 0xff, 0xff, 0xff)

    /// A fresh random 16-byte marker.
    public static func marker() -> [UInt8] { (0..<16).map { _ in UInt8.random(in: 0...255) } }

    /// Whether `needle` occurs in `haystack`.
    public static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return needle.isEmpty }
        let first = needle[0]
        var i = haystack.startIndex
        while i <= haystack.endIndex - needle.count {
            if haystack[i] == first, haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    public static func ethernet(dst: MACAddress, src: MACAddress, type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        var f = dst.bytes + src.bytes + [UInt8(type >> 8), UInt8(type & 0xff)] + payload
        if f.count < 60 { f += [UInt8](repeating: 0, count: 60 - f.count) }
        return f
    }

    static func checksum(_ bytes: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count { sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1]); i += 2 }
        if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
        return ~UInt16(sum)
    }

    /// IPv4 + UDP (checksum 0, allowed for UDP over IPv4) carrying `payload`.
    public static func udp4(dstMAC: MACAddress, srcMAC: MACAddress, src: IPAddress, dst: IPAddress,
                            srcPort: UInt16 = 40000, dstPort: UInt16 = 9, _ payload: [UInt8]) -> [UInt8] {
        let udpLen = 8 + payload.count
        let udp: [UInt8] = [UInt8(srcPort >> 8), UInt8(srcPort & 0xff), UInt8(dstPort >> 8), UInt8(dstPort & 0xff),
                            UInt8(udpLen >> 8), UInt8(udpLen & 0xff), 0, 0] + payload
        let total = 20 + udp.count
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0x40, 0, 64, 17, 0, 0] + src.bytes + dst.bytes
        let c = checksum(ip)
        ip[10] = UInt8(c >> 8)
        ip[11] = UInt8(c & 0xff)
        return ethernet(dst: dstMAC, src: srcMAC, type: 0x0800, ip + udp)
    }

    /// IPv6 + UDP (checksum left 0: receivers drop it at UDP, but switches forward it and
    /// packet sockets see it — enough for delivery tests).
    public static func udp6(dstMAC: MACAddress, srcMAC: MACAddress, src: IPAddress, dst: IPAddress, flowLabel: UInt32 = 0,
                            _ payload: [UInt8]) -> [UInt8] {
        let udpLen = 8 + payload.count
        let udp: [UInt8] = [0x9c, 0x40, 0, 9, UInt8(udpLen >> 8), UInt8(udpLen & 0xff), 0, 0] + payload
        return ethernet(dst: dstMAC, src: srcMAC, type: 0x86DD, ipv6(udp.count, next: 17, hopLimit: 64, flowLabel: flowLabel, src, dst) + udp)
    }

    /// An ARP request (who-has `target` tell `senderIP`) from `senderMAC`, broadcast; `marker`
    /// rides in the padding after the ARP body.
    public static func arpRequest(ethernetSource: MACAddress, senderMAC: MACAddress, senderIP: IPAddress, target: IPAddress,
                                  marker: [UInt8] = []) -> [UInt8] {
        let body: [UInt8] = [0, 1, 8, 0, 6, 4, 0, 1] + senderMAC.bytes + senderIP.bytes + [0, 0, 0, 0, 0, 0] + target.bytes
        return ethernet(dst: broadcast, src: ethernetSource, type: 0x0806, body + marker)
    }

    /// A frame of any ethertype carrying `payload`.
    public static func raw(dst: MACAddress, src: MACAddress, type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        ethernet(dst: dst, src: src, type: type, payload)
    }
}
