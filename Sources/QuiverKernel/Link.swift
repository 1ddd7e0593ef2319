import CNetlink
import QuiverNetlink

/// 64-bit link counters (`IFLA_STATS64`), as seen from the link: rx is what it received.
public struct LinkStatistics: Sendable, Equatable, Codable {
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var rxErrors: UInt64 = 0
    public var rxDropped: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    public var txErrors: UInt64 = 0
    public var txDropped: UInt64 = 0
    public var multicast: UInt64 = 0

    public init() {}

    init(_ s: rtnl_link_stats64) {
        rxPackets = s.rx_packets
        rxBytes = s.rx_bytes
        rxErrors = s.rx_errors
        rxDropped = s.rx_dropped
        txPackets = s.tx_packets
        txBytes = s.tx_bytes
        txErrors = s.tx_errors
        txDropped = s.tx_dropped
        multicast = s.multicast
    }
}

/// RFC 2863 operational state (`IFLA_OPERSTATE`).
public enum OperState: UInt8, Sendable, Codable, CustomStringConvertible {
    case unknown = 0, notPresent, down, lowerLayerDown, testing, dormant, up

    public var description: String {
        switch self {
        case .unknown: return "unknown"
        case .notPresent: return "notpresent"
        case .down: return "down"
        case .lowerLayerDown: return "lowerlayerdown"
        case .testing: return "testing"
        case .dormant: return "dormant"
        case .up: return "up"
        }
    }
}

/// Kind-specific data decoded from `IFLA_INFO_DATA`.
public enum LinkData: Sendable, Equatable {
    case bridge(Bridge)
    case veth
    case ifb
    case tun(TunInfo)
    case macvtap(Macvtap)
    case vxlan(Vxlan)
    /// A kind Quiver does not decode; the kind string is in ``Link/kind``.
    case other
}

/// A link as the kernel reports it (`RTM_NEWLINK` answer to get or dump).
public struct Link: Sendable, Equatable {
    public var index: Int32
    public var name: String
    /// `IFLA_INFO_KIND` ("veth", "bridge", "tun", ...); nil for loopback and hardware.
    public var kind: String?
    public var data: LinkData?
    /// `IFLA_INFO_SLAVE_KIND` ("bridge" for a bridge port).
    public var portKind: String?
    /// Bridge port flags, when the link is a bridge port.
    public var bridgePort: BridgePortFlags?
    public var flags: UInt32
    public var mtu: UInt32
    public var mac: MACAddress?
    public var operState: OperState
    public var masterIndex: Int32?
    /// `IFLA_LINK`: a veth's peer or a macvtap/vxlan lower device.
    public var linkIndex: Int32?
    /// `IFLA_LINK_NETNSID`: set when ``linkIndex`` lives in another namespace.
    public var linkNetnsID: Int32?
    public var alias: String?
    public var group: UInt32
    public var txQueueLength: UInt32
    public var statistics: LinkStatistics?
    /// `ARPHRD_*` type.
    public var hardwareType: UInt16
    /// IPv6 address generation mode (`IFLA_INET6_ADDR_GEN_MODE`); nil when the link has no
    /// IPv6 state (or the dump left it out).
    public var ipv6AddressGeneration: UInt8?

    /// Whether the kernel gives the link an IPv6 link-local address when it comes up (any mode
    /// but `none`); nil when unknown.
    public var ipv6LinkLocal: Bool? { ipv6AddressGeneration.map { $0 != UInt8(IN6_ADDR_GEN_MODE_NONE.rawValue) } }

    public var isUp: Bool { flags & UInt32(IFF_UP) != 0 }

    /// `DEVCONF_ADDR_GEN_MODE` of `<linux/ipv6.h>` (not imported: that header clashes with
    /// glibc's): the mode's slot in `IFLA_INET6_CONF`.
    static let devconfAddrGenMode = 47

    /// A link value not read from the kernel (for plans and their tests).
    public init(name: String, index: Int32, group: UInt32 = 0, kind: String? = nil) {
        self.name = name
        self.index = index
        self.group = group
        self.kind = kind
        flags = 0
        mtu = 1500
        operState = .unknown
        txQueueLength = 0
        hardwareType = UInt16(ARPHRD_ETHER)
    }

    public init(decoding message: ReceivedMessage) throws {
        let h = try message.header(as: ifinfomsg.self)
        let a = message.attributes(after: ifinfomsg.self)
        index = h.ifi_index
        flags = h.ifi_flags
        hardwareType = h.ifi_type
        name = a.string(IFLA_IFNAME) ?? ""
        mtu = a.u32(IFLA_MTU) ?? 0
        mac = a.payload(IFLA_ADDRESS).flatMap { try? MACAddress(bytes: $0) }
        operState = a.u8(IFLA_OPERSTATE).flatMap(OperState.init(rawValue:)) ?? .unknown
        masterIndex = a.s32(IFLA_MASTER)
        linkIndex = a.s32(IFLA_LINK)
        linkNetnsID = a.s32(IFLA_LINK_NETNSID)
        alias = a.string(IFLA_IFALIAS)
        group = a.u32(IFLA_GROUP) ?? 0
        txQueueLength = a.u32(IFLA_TXQLEN) ?? 0
        statistics = a.value(IFLA_STATS64, as: rtnl_link_stats64.self).map(LinkStatistics.init)
        if let inet6 = a.nested(IFLA_AF_SPEC)?.nested(AF_INET6) {
            // The mode has an attribute of its own, but a dump without statistics stops before it;
            // the sysctl array (`IFLA_INET6_CONF`, s32 per `DEVCONF_*`) always carries it.
            if let mode = inet6.u8(IFLA_INET6_ADDR_GEN_MODE) {
                ipv6AddressGeneration = mode
            } else if let conf = inet6.payload(IFLA_INET6_CONF), conf.count >= (Link.devconfAddrGenMode + 1) * 4 {
                let mode = conf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: Link.devconfAddrGenMode * 4, as: Int32.self) }
                ipv6AddressGeneration = UInt8(clamping: mode)
            }
        }

        if let info = a.nested(IFLA_LINKINFO) {
            kind = info.string(IFLA_INFO_KIND)
            let data = info.nested(IFLA_INFO_DATA)
            switch kind {
            case Bridge.kind?: self.data = .bridge(Bridge(decoding: data))
            case Veth.kind?: self.data = .veth
            case IFB.kind?: self.data = .ifb
            case TunInfo.kind?: self.data = .tun(TunInfo(decoding: data))
            case Macvtap.kind?: self.data = .macvtap(Macvtap(decoding: data, lower: linkIndex ?? 0))
            case Vxlan.kind?: self.data = .vxlan(Vxlan(decoding: data))
            case nil: self.data = nil
            default: self.data = .other
            }
            portKind = info.string(IFLA_INFO_SLAVE_KIND)
            if portKind == "bridge", let port = info.nested(IFLA_INFO_SLAVE_DATA) {
                bridgePort = BridgePortFlags(decoding: port)
            }
        }
    }

    /// dladm-like class: bridge, veth, tap, tun, macvtap, ifb, vxlan, loopback, phys.
    public var linkClass: String {
        switch data {
        case .tun(let t): return t.isTap ? "tap" : "tun"
        case .some: return kind ?? "other"
        case nil: return hardwareType == UInt16(ARPHRD_LOOPBACK) ? "loopback" : "phys"
        }
    }
}
