import CNetlink

/// A tc handle or class id `major:minor` (16 bits each), printed in hex as tc does: `1:10`.
public struct TCHandle: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init(major: UInt16, minor: UInt16) {
        rawValue = quiver_tc_h_make(UInt32(major), UInt32(minor))
    }

    public var major: UInt16 { UInt16(rawValue >> 16) }
    public var minor: UInt16 { UInt16(rawValue & 0xFFFF) }

    /// The parent of a root qdisc.
    public static let root = TCHandle(rawValue: quiver_tc_h_root())
    /// The parent of an `ingress` or `clsact` qdisc (`ffff:fff1`).
    public static let ingressParent = TCHandle(rawValue: quiver_tc_h_ingress())
    /// The handle an `ingress`/`clsact` qdisc always has (`ffff:0`).
    public static let ingressHandle = TCHandle(major: 0xFFFF, minor: 0)
    /// clsact's ingress and egress hooks, as filter parents (`ffff:fff2`, `ffff:fff3`).
    public static let clsactIngress = TCHandle(major: 0xFFFF, minor: 0xFFF2)
    public static let clsactEgress = TCHandle(major: 0xFFFF, minor: 0xFFF3)
    /// "Let the kernel choose" / none.
    public static let unspecified = TCHandle(rawValue: 0)

    /// Parses `1:10`, `1:` or `root`/`ingress` (hex, as tc).
    public init(_ text: String) throws(InvalidValue) {
        switch text {
        case "root": self = .root; return
        case "ingress": self = .ingressParent; return
        default: break
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = UInt16(parts[0], radix: 16),
              let minor = parts[1].isEmpty ? 0 : UInt16(parts[1], radix: 16) else {
            throw InvalidValue("\"\(text)\" is not a tc handle; write MAJOR:MINOR in hex, like 1:10")
        }
        self.init(major: major, minor: minor)
    }

    public var description: String {
        switch self {
        case .root: return "root"
        case .ingressParent: return "ingress"
        default: return String(major, radix: 16) + ":" + (minor == 0 ? "" : String(minor, radix: 16))
        }
    }

    public static func < (a: TCHandle, b: TCHandle) -> Bool { a.rawValue < b.rawValue }
}
