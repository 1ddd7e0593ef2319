import CNetlink
import QuiverNetlink

/// An intermediate functional block: where traffic redirected from another device's ingress is
/// shaped. Equivalent to `ip link add NAME type ifb`.
public struct IFB: LinkKind, Equatable {
    public static let kind = "ifb"
    public init() {}
    public func encodeInfoData(into m: inout NetlinkMessage) {}
}
