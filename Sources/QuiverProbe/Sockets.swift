import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink

/// Small socket helpers shared by the probes.
enum Sockets {
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    static func setTimeout(_ fd: Int32, seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Calls `body` with a sockaddr for `address`:`port`.
    static func withSockaddr<T>(_ address: IPAddress, _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        switch address {
        case .v4(let b):
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: b) }
            return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case .v6(let b):
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: b) }
            return withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        }
    }

    /// A close-on-exec socket of `address`'s family, opened inside `ns` (it stays there, whatever
    /// thread uses it later); bound to `address`:`bindPort` when a port is given.
    static func open(in ns: NetworkNamespace, _ type: __socket_type, for address: IPAddress, bindPort: UInt16? = nil,
                     reuseAddress: Bool = false, what: String) throws -> Int32 {
        try ns.run { () throws -> Int32 in
            let fd = socket(address.isV4 ? AF_INET : AF_INET6, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemCallError("socket", what, errno: .init(rawValue: errno)) }
            if reuseAddress {
                var one: Int32 = 1
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
            }
            if let port = bindPort, bind(fd, address, port) != 0 {
                let e = errno
                close(fd)
                throw SystemCallError("bind", "\(what) \(address) port \(port)", errno: .init(rawValue: e))
            }
            return fd
        }
    }

    static func bind(_ fd: Int32, _ address: IPAddress, _ port: UInt16) -> Int32 {
        withSockaddr(address, port) { Glibc.bind(fd, $0, $1) }
    }

    static func connect(_ fd: Int32, _ address: IPAddress, _ port: UInt16) -> Int32 {
        withSockaddr(address, port) { Glibc.connect(fd, $0, $1) }
    }
}
