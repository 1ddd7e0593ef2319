import CNetlink
import Foundation
import SystemPackage

/// A netlink socket that only listens: subscribed to multicast groups, it receives the kernel's
/// notifications of changes (what `ip monitor` and `nft monitor` print). Non-blocking, owning its
/// descriptor, living in the namespace it was opened in (open it inside one with
/// ``NetworkNamespace/run(_:)``).
///
/// The kernel drops notifications when the receive queue is full and reports it once as
/// `ENOBUFS`: ``receive()`` returns that as ``Batch/overrun`` — the listener then knows that it
/// missed something, not what, and must re-read everything it cares about.
public final class NetlinkMonitor: @unchecked Sendable {
    public let netlinkProtocol: Int32
    public let fileDescriptor: Int32
    private var buffer = [UInt8](repeating: 0, count: 256 * 1024)

    /// rtnetlink groups: links, addresses, routes (both families) and traffic control.
    public static let routeGroups: [UInt32] = [RTNLGRP_LINK, RTNLGRP_TC, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
                                               RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE].map { UInt32($0.rawValue) }
    /// nfnetlink's group for nftables (tables, chains, rules, sets).
    public static let nftablesGroups: [UInt32] = [UInt32(NFNLGRP_NFTABLES.rawValue)]

    /// Opens a socket of `proto` in the calling thread's namespace, subscribed to `groups`.
    public init(protocol proto: Int32, groups: [UInt32]) throws(SystemCallError) {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), proto)
        guard fd >= 0 else { throw SystemCallError("socket(AF_NETLINK)", errno: Errno(rawValue: errno)) }
        var addr = sockaddr_nl()
        addr.nl_family = sa_family_t(AF_NETLINK)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard bound == 0 else {
            let e = Errno(rawValue: errno)
            Glibc.close(fd)
            throw SystemCallError("bind(AF_NETLINK)", errno: e)
        }
        for g in groups {
            var group = Int32(g)
            guard setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                let e = Errno(rawValue: errno)
                Glibc.close(fd)
                throw SystemCallError("setsockopt(NETLINK_ADD_MEMBERSHIP \(g))", errno: e)
            }
        }
        // A burst (a whole topology deleted) must fit; FORCE works as root, plain is the fallback.
        var size: Int32 = 4 * 1024 * 1024
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        netlinkProtocol = proto
        fileDescriptor = fd
    }

    deinit { Glibc.close(fileDescriptor) }

    /// What one call to ``receive()`` found.
    public enum Batch: Sendable {
        /// Notifications, in the order the kernel sent them (possibly none: nothing was waiting).
        case messages([ReceivedMessage])
        /// The queue overflowed: some notifications were lost.
        case overrun
    }

    /// Every notification waiting now, without blocking.
    public func receive() -> Batch {
        var all: [ReceivedMessage] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fileDescriptor, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                switch errno {
                case EINTR: continue
                case ENOBUFS: return .overrun
                default: return .messages(all)  // EAGAIN: drained
                }
            }
            if n == 0 { return .messages(all) }
            buffer.withUnsafeBytes { all += ReceivedMessage.split(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }
}
