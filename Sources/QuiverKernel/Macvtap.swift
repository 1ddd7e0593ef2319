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
}
