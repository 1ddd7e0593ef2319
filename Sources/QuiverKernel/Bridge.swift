import CNetlink
import QuiverNetlink

/// A Linux bridge: Quiver's switch (the analogue of a Crossbow etherstub).
/// Equivalent to `ip link add NAME type bridge [stp_state 0|1] [ageing_time T]`.
public struct Bridge: LinkKind, Equatable {
    public static let kind = "bridge"
    /// Spanning tree; off by default (a fabric of virtual ports has no loops).
    public var stp: Bool?
    /// FDB ageing time in centiseconds (kernel unit, as `ageing_time` in iproute2).
    public var ageingTime: UInt32?

    public init(stp: Bool? = nil, ageingTime: UInt32? = nil) {
        self.stp = stp
        self.ageingTime = ageingTime
    }

    public func encodeInfoData(into m: inout NetlinkMessage) {
        guard stp != nil || ageingTime != nil else { return }
        m.nest(IFLA_INFO_DATA) { d in
            if let stp { d.put(IFLA_BR_STP_STATE, u32: stp ? 1 : 0) }
            if let ageingTime { d.put(IFLA_BR_AGEING_TIME, u32: ageingTime) }
        }
    }

    init(decoding data: NetlinkAttributes?) {
        stp = data?.u32(IFLA_BR_STP_STATE).map { $0 != 0 }
        ageingTime = data?.u32(IFLA_BR_AGEING_TIME)
    }
}

/// Per-port flags of a bridge port (`IFLA_BRPORT_*`). nil leaves a flag alone.
/// Equivalent to `bridge link set dev PORT isolated on learning off flood off hairpin on`.
public struct BridgePortFlags: Sendable, Equatable, Codable {
    /// An isolated port cannot talk to another isolated port, only to non-isolated ones.
    public var isolated: Bool?
    public var learning: Bool?
    /// Unknown-unicast flooding towards this port.
    public var flood: Bool?
    public var broadcastFlood: Bool?
    public var multicastFlood: Bool?
    /// Reflective relay: frames may go back out of the port they came in on.
    public var hairpin: Bool?
    /// ARP and neighbour solicitations for addresses in the bridge's neighbour table are answered
    /// by the bridge (`neigh_suppress`), and not flooded towards this port.
    public var neighSuppress: Bool?

    public init(isolated: Bool? = nil, learning: Bool? = nil, flood: Bool? = nil, broadcastFlood: Bool? = nil,
                multicastFlood: Bool? = nil, hairpin: Bool? = nil, neighSuppress: Bool? = nil) {
        self.neighSuppress = neighSuppress
        self.isolated = isolated
        self.learning = learning
        self.flood = flood
        self.broadcastFlood = broadcastFlood
        self.multicastFlood = multicastFlood
        self.hairpin = hairpin
    }

    init(decoding a: NetlinkAttributes) {
        isolated = a.u8(IFLA_BRPORT_ISOLATED).map { $0 != 0 }
        learning = a.u8(IFLA_BRPORT_LEARNING).map { $0 != 0 }
        flood = a.u8(IFLA_BRPORT_UNICAST_FLOOD).map { $0 != 0 }
        broadcastFlood = a.u8(IFLA_BRPORT_BCAST_FLOOD).map { $0 != 0 }
        multicastFlood = a.u8(IFLA_BRPORT_MCAST_FLOOD).map { $0 != 0 }
        hairpin = a.u8(IFLA_BRPORT_MODE).map { $0 != 0 }
        neighSuppress = a.u8(IFLA_BRPORT_NEIGH_SUPPRESS).map { $0 != 0 }
    }

    func encode(into d: inout NetlinkMessage) {
        func flag(_ type: Int, _ value: Bool?) { if let value { d.put(type, u8: value ? 1 : 0) } }
        flag(IFLA_BRPORT_ISOLATED, isolated)
        flag(IFLA_BRPORT_LEARNING, learning)
        flag(IFLA_BRPORT_UNICAST_FLOOD, flood)
        flag(IFLA_BRPORT_BCAST_FLOOD, broadcastFlood)
        flag(IFLA_BRPORT_MCAST_FLOOD, multicastFlood)
        flag(IFLA_BRPORT_MODE, hairpin)
        flag(IFLA_BRPORT_NEIGH_SUPPRESS, neighSuppress)
    }
}

extension LinkRequest {
    /// Sets bridge-port flags on a link enslaved to a bridge (`IFLA_INFO_SLAVE_DATA`).
    public static func setBridgePort(_ port: InterfaceName, _ flags: BridgePortFlags) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_NEWLINK, flags: 0)
        m.append(header: ifinfomsg())
        m.put(IFLA_IFNAME, string: port.rawValue)
        m.nest(IFLA_LINKINFO) { info in
            info.put(IFLA_INFO_SLAVE_KIND, string: Bridge.kind)
            info.nest(IFLA_INFO_SLAVE_DATA) { flags.encode(into: &$0) }
        }
        return NetlinkRequest(m, RequestContext("set bridge port flags of", port.rawValue, subject: .link))
    }
}

extension NetlinkHandle {
    /// Equivalent to `bridge link set dev PORT ...`.
    public func setBridgePort(_ port: InterfaceName, _ flags: BridgePortFlags) throws {
        try perform([LinkRequest.setBridgePort(port, flags)])
    }
}
