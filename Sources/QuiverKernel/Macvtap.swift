import CNetlink
import Glibc
import QuiverNetlink
import SystemPackage

/// A macvtap over a lower link: the `dladm create-vnic -l LINK` analogue for a VM. Its traffic is
/// read and written through a character device `/dev/tapIFINDEX`.
/// Equivalent to `ip link add NAME link LOWER type macvtap mode MODE`.
public struct Macvtap: LinkKind, Equatable {
    public static let kind = "macvtap"

    public enum Mode: String, Sendable, Codable, CaseIterable {
        case `private`, vepa, bridge, passthru

        var kernelValue: UInt32 {
            switch self {
            case .private: return MACVLAN_MODE_PRIVATE.rawValue
            case .vepa: return MACVLAN_MODE_VEPA.rawValue
            case .bridge: return MACVLAN_MODE_BRIDGE.rawValue
            case .passthru: return MACVLAN_MODE_PASSTHRU.rawValue
            }
        }

        init?(kernelValue: UInt32) {
            guard let m = Mode.allCases.first(where: { $0.kernelValue == kernelValue }) else { return nil }
            self = m
        }
    }

    /// Index of the lower link in the same namespace.
    public var lowerIndex: Int32
    public var mode: Mode

    public init(lowerIndex: Int32, mode: Mode = .bridge) {
        self.lowerIndex = lowerIndex
        self.mode = mode
    }

    public func encodeLinkAttributes(into m: inout NetlinkMessage) {
        m.put(IFLA_LINK, u32: UInt32(bitPattern: lowerIndex))
    }

    public func encodeInfoData(into m: inout NetlinkMessage) {
        m.nest(IFLA_INFO_DATA) { $0.put(IFLA_MACVLAN_MODE, u32: mode.kernelValue) }
    }

    init(decoding d: NetlinkAttributes?, lower: Int32) {
        lowerIndex = lower
        mode = d?.u32(IFLA_MACVLAN_MODE).flatMap(Mode.init(kernelValue:)) ?? .vepa
    }

    /// Creates the macvtap `name` over `lowerIndex` and returns its interface index.
    ///
    /// `/dev/tapN` is named by interface index, which is only unique within a namespace: a
    /// macvtap elsewhere (or one in a namespace still being torn down) with the same index owns
    /// the node, and the new device gets none. So the link is created with an index above every
    /// index in its namespace (and above 1000) whose node does not exist yet.
    public static func create(_ name: InterfaceName, lowerIndex: Int32, mode: Mode = .bridge, _ settings: LinkSettings,
                              handle: NetlinkHandle) throws -> Int32 {
        var candidate = max(try handle.links(statistics: false).map(\.index).max() ?? 0, 1000) + 1
        var attempts = 0
        while true {
            while access(characterDevicePath(ifindex: candidate), F_OK) == 0 { candidate += 1 }
            var s = settings
            s.index = candidate
            do {
                try handle.perform(LinkRequest.add(name, Macvtap(lowerIndex: lowerIndex, mode: mode), s))
                return candidate
            } catch let e as NetlinkError where (e.errno == .resourceBusy || e.errno == .fileExists) && attempts < 8 {
                // Another process took the index meanwhile (a name clash fails again, then throws).
                attempts += 1
                candidate += 1
            }
        }
    }

    /// The character device of a macvtap with this interface index. devtmpfs (or udev) creates
    /// it when the link is made.
    public static func characterDevicePath(ifindex: Int32) -> String { "/dev/tap\(ifindex)" }

    /// Opens the macvtap's character device (`O_RDWR|O_CLOEXEC`). The caller owns the descriptor.
    public static func openCharacterDevice(ifindex: Int32, name: InterfaceName) throws -> FileDescriptor {
        let path = characterDevicePath(ifindex: ifindex)
        do {
            return try FileDescriptor.open(FilePath(path), .readWrite, options: [.closeOnExec])
        } catch let e as Errno {
            let hint = e == .noSuchFileOrDirectory ? " (no device node: is devtmpfs mounted on /dev, or udev running?)" : ""
            throw SystemCallError("open", "\(path) of macvtap \(name)\(hint)", errno: e)
        }
    }

    /// Opens `options.queues` queue descriptors of the macvtap (each open of the character
    /// device is one queue), makes sure they belong to `name` — `/dev/tapN` is named by
    /// interface index, which another namespace may reuse — and sets the vnet header size and
    /// offloads as ``Tap`` does. What qemu's `-netdev tap,fds=` takes, as libvirt passes it.
    public static func openQueues(ifindex: Int32, name: InterfaceName, _ options: TapOptions = TapOptions()) throws -> [FileDescriptor] {
        guard (1...256).contains(options.queues) else {
            throw InvalidValue("macvtap \(name): queues must be 1–256, got \(options.queues)")
        }
        var fds: [FileDescriptor] = []
        do {
            for _ in 0..<options.queues {
                let fd = try openCharacterDevice(ifindex: ifindex, name: name)
                fds.append(fd)
                var actual = [CChar](repeating: 0, count: 16)
                try checkTunIoctl(quiver_tun_get_name(fd.rawValue, &actual), "TUNGETIFF", "macvtap \(name)")
                let found = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                guard found == name.rawValue else {
                    throw InvalidValue("\(characterDevicePath(ifindex: ifindex)) belongs to \(found), not macvtap \(name) "
                                       + "(interface index \(ifindex) is reused in another network namespace)")
                }
            }
            if options.vnetHeader {
                // A macvtap keeps the header size per queue (a tap per device); offloads are the
                // device's.
                for fd in fds {
                    try checkTunIoctl(quiver_tun_set_vnet_hdr_size(fd.rawValue, options.vnetHeaderSize), "TUNSETVNETHDRSZ", "macvtap \(name)")
                }
                try checkTunIoctl(quiver_tun_set_offload(fds[0].rawValue, options.offloads), "TUNSETOFFLOAD", "macvtap \(name)")
            }
            return fds
        } catch {
            for fd in fds { try? fd.close() }
            throw error
        }
    }
}
