import CNetlink
import QuiverNetlink

/// A veth pair. The peer can be created directly in another namespace.
/// Equivalent to `ip link add NAME type veth peer name PEER [netns NS] [address MAC] [mtu N]`.
///
/// The kernel cannot bring the peer up while it creates the pair (the peer has no partner yet:
/// `ENOTCONN`), nor set its `ifalias`. Those two settings go in ``peerFollowUp``: a second request,
/// which ``LinkRequest/add(_:_:_:replace:)`` appends when the peer stays in the same namespace; a
/// caller moving the peer elsewhere sends it with that namespace's handle.
public struct Veth: LinkKind, Equatable {
    public static let kind = "veth"
    public var peer: InterfaceName
    /// Settings of the peer end (its namespace, MAC, up, group ...).
    public var peerSettings: LinkSettings

    public init(peer: InterfaceName, peerSettings: LinkSettings = LinkSettings()) {
        self.peer = peer
        self.peerSettings = peerSettings
    }

    public func encodeInfoData(into m: inout NetlinkMessage) {
        m.nest(IFLA_INFO_DATA) { d in
            // VETH_INFO_PEER carries a whole ifinfomsg followed by the peer's attributes.
            d.nest(VETH_INFO_PEER) { p in
                var creation = peerSettings
                creation.up = nil
                p.append(header: creation.header())
                p.put(IFLA_IFNAME, string: peer.rawValue)
                peerSettings.encode(into: &p)
            }
        }
    }

    /// Brings the peer up and sets its alias, if asked; nil when there is nothing to do.
    public var peerFollowUp: NetlinkRequest? {
        guard peerSettings.up != nil || peerSettings.alias != nil else { return nil }
        return LinkRequest.change(peer, LinkSettings(up: peerSettings.up, alias: peerSettings.alias))
    }

    public func followUpRequests() -> [NetlinkRequest] {
        peerSettings.namespace == nil ? peerFollowUp.map { [$0] } ?? [] : []
    }
}
