import CNetlink
import Glibc
import QuiverNetlink
import SystemPackage

/// A kind of link that rtnetlink can create (`IFLA_INFO_KIND`): bridge, veth, ifb, macvtap, vxlan.
public protocol LinkKind: Sendable {
    /// The kernel's kind string.
    static var kind: String { get }
    /// Fills `IFLA_INFO_DATA` (called inside `IFLA_LINKINFO`); kinds without data do nothing.
    func encodeInfoData(into message: inout NetlinkMessage)
    /// Attributes outside `IFLA_LINKINFO` the kind needs (e.g. `IFLA_LINK` for a lower device).
    func encodeLinkAttributes(into message: inout NetlinkMessage)
    /// Requests to send right after creation, in the same namespace (e.g. bringing a veth peer up).
    func followUpRequests() -> [NetlinkRequest]
}

extension LinkKind {
    public func encodeLinkAttributes(into message: inout NetlinkMessage) {}
    public func followUpRequests() -> [NetlinkRequest] { [] }
}

/// A namespace to put a new link (or a veth peer) in: `IFLA_NET_NS_FD` or `IFLA_NET_NS_PID`.
/// The descriptor must stay open until the request has been executed.
public enum NamespaceTarget: Sendable, Equatable {
    case fd(Int32)
    case pid(Int32)

    func encode(into m: inout NetlinkMessage) {
        switch self {
        case .fd(let fd): m.put(IFLA_NET_NS_FD, u32: UInt32(bitPattern: fd))
        case .pid(let pid): m.put(IFLA_NET_NS_PID, u32: UInt32(bitPattern: pid))
        }
    }
}
