/// Which way traffic goes, seen from a VNIC's endpoint (as Crossbow's maxbw: full duplex).
public enum Direction: String, Sendable, Codable, CaseIterable {
    /// From the endpoint into the fabric (the endpoint's outbound traffic): the host-side
    /// device's ingress, redirected to the group's `ifbFrom`.
    case fromEndpoint = "outbound"
    /// From the fabric to the endpoint (its inbound traffic): the host-side device's egress,
    /// redirected to the group's `ifbTo`.
    case toEndpoint = "inbound"
}

/// Transport of a flow (the `flowadm` analogue).
public enum Transport: String, Sendable, Codable, CaseIterable {
    case tcp, udp, icmp

    package func protocolNumber(v6: Bool) -> UInt8 {
        switch self {
        case .tcp: return 6
        case .udp: return 17
        case .icmp: return v6 ? 58 : 1
        }
    }
}

/// A flow on a VNIC with its own cap; matched by local/remote prefix, transport and ports.
/// "Local" is the endpoint's side: its source when it sends, its destination when it receives.
public struct FlowCap: Sendable, Equatable, Codable {
    public var name: String
    public var transport: Transport?
    public var localIP: IPPrefix?
    public var remoteIP: IPPrefix?
    public var localPort: UInt16?
    public var remotePort: UInt16?
    /// 0 blocks the flow.
    public var maxbw: Bitrate

    public init(name: String, transport: Transport? = nil, localIP: IPPrefix? = nil, remoteIP: IPPrefix? = nil,
                localPort: UInt16? = nil, remotePort: UInt16? = nil, maxbw: Bitrate) {
        self.name = name
        self.transport = transport
        self.localIP = localIP
        self.remoteIP = remoteIP
        self.localPort = localPort
        self.remotePort = remotePort
        self.maxbw = maxbw
    }
}

extension FlowCap {
    /// Every problem with one VNIC's flows (`owner` names it in the messages), or none.
    public static func problems(_ flows: [FlowCap], of owner: String) -> [String] {
        var out: [String] = []
        if flows.count > CapGroup.maxFlowsPerMember {
            out.append("\(owner): \(flows.count) flows; at most \(CapGroup.maxFlowsPerMember) per VNIC")
        }
        var names = Set<String>()
        for f in flows {
            if !names.insert(f.name).inserted { out.append("\(owner): flow \(f.name) is defined twice") }
            if (f.localPort != nil || f.remotePort != nil), f.transport == nil || f.transport == .icmp {
                out.append("\(owner): flow \(f.name) matches a port, so its transport must be tcp or udp")
            }
            if let l = f.localIP, let r = f.remoteIP, l.address.isV4 != r.address.isV4 {
                out.append("\(owner): flow \(f.name) mixes an IPv4 and an IPv6 prefix")
            }
        }
        return out
    }
}

/// One VNIC in a cap group: its host-side device and the MAC its endpoint uses.
public struct CapMember: Sendable, Equatable, Codable {
    public var name: String
    /// The host-side device (veth end on the switch, tap) in the fabric namespace.
    public var device: InterfaceName
    /// The endpoint's MAC: how the group's IFBs tell members apart. Optional only for a group of
    /// one member (then everything on the IFB is that member's).
    public var mac: MACAddress?
    /// Ceiling each direction; nil: the group's cap. 0 blocks the VNIC.
    public var maxbw: Bitrate?
    /// Guaranteed rate each direction while others compete.
    public var floor: Bitrate?
    public var flows: [FlowCap]
    /// Overrides of the policy's sizes for this VNIC's classes: bucket bytes, queue bytes.
    public var burst: UInt32?
    public var queueLimit: UInt32?
    /// The device is the endpoint's own end (a macvtap: what it transmits is what the guest
    /// sends), not a fabric port facing it (veth host side, tap: what it transmits is what the
    /// endpoint receives). Its hooks bind to the group's blocks the other way round.
    public var facesEndpoint: Bool
    /// The endpoint is a guest: what it sends comes through qemu, which gives its TCP no
    /// backpressure from the host's queues (nil: not a guest; records made before guests).
    public var guestSender: Bool?
    /// Ceiling and bucket towards the endpoint (what it receives) when they differ from `maxbw`
    /// and `burst` (a CNI attachment's `ingressRate`/`ingressBurst`); nil: the same both ways.
    public var maxbwToEndpoint: Bitrate?
    public var burstToEndpoint: UInt32?

    /// The ceiling in direction `d`.
    public func maxbw(_ d: Direction) -> Bitrate? { d == .toEndpoint ? (maxbwToEndpoint ?? maxbw) : maxbw }
    /// The bucket override in direction `d`.
    public func burst(_ d: Direction) -> UInt32? { d == .toEndpoint ? (burstToEndpoint ?? burst) : burst }

    public init(name: String, device: InterfaceName, mac: MACAddress? = nil, maxbw: Bitrate? = nil, floor: Bitrate? = nil,
                flows: [FlowCap] = [], burst: UInt32? = nil, queueLimit: UInt32? = nil, facesEndpoint: Bool = false, guestSender: Bool = false) {
        self.facesEndpoint = facesEndpoint
        self.guestSender = guestSender ? true : nil
        self.burst = burst
        self.queueLimit = queueLimit
        self.name = name
        self.device = device
        self.mac = mac
        self.maxbw = maxbw
        self.floor = floor
        self.flows = flows
    }
}

/// VNICs that share a cap (a tenant, or a single device): two IFBs, one per direction, each with
/// an HTB tree: aggregate class → member classes → flow classes.
public struct CapGroup: Sendable, Equatable, Codable {
    public var name: String
    /// IFBs shaping traffic from the endpoints / to the endpoints.
    public var ifbFrom: InterfaceName
    public var ifbTo: InterfaceName
    /// Aggregate cap each direction; nil: no aggregate (members are capped one by one).
    public var maxbw: Bitrate?
    public var members: [CapMember]
    /// Written to the IFBs' `ifalias`: how Quiver recognises its own IFBs.
    public var ownerTag: String
    /// Link group the IFBs are created in (a topology's group, so one request deletes them).
    public var linkGroup: UInt32?

    public init(name: String, ifbFrom: InterfaceName, ifbTo: InterfaceName, maxbw: Bitrate? = nil,
                members: [CapMember], ownerTag: String, linkGroup: UInt32? = nil) {
        self.linkGroup = linkGroup
        self.name = name
        self.ifbFrom = ifbFrom
        self.ifbTo = ifbTo
        self.maxbw = maxbw
        self.members = members
        self.ownerTag = ownerTag
    }

    public func ifb(_ d: Direction) -> InterfaceName { d == .fromEndpoint ? ifbFrom : ifbTo }

    /// The shared filter blocks every member's clsact hooks are bound to (ingress: traffic from
    /// the endpoints; egress: towards them). Indices are derived from the owner tag, in Quiver's
    /// range 0x5100_0000–0x51FF_FFFF: a clsact bound to blocks in that range is Quiver's.
    public var ingressBlock: UInt32 { CapGroup.blockRange | (StableHash.fnv1a32(ownerTag + "/from") & 0x00FF_FFFF) }
    public var egressBlock: UInt32 { CapGroup.blockRange | (StableHash.fnv1a32(ownerTag + "/to") & 0x00FF_FFFF) }
    public static let blockRange: UInt32 = 0x5100_0000


    /// Largest flows per member and members per group the handle layout allows.
    public static let maxFlowsPerMember = 13
    public static let maxMembers = 2900

    /// Every problem with the group, or none. Nothing touches the kernel before this is empty.
    public func problems() -> [String] {
        var out: [String] = []
        if members.isEmpty { out.append("cap group \(name) has no member") }
        if members.count > CapGroup.maxMembers { out.append("cap group \(name) has \(members.count) members; at most \(CapGroup.maxMembers) fit") }
        if members.count > 1 {
            for m in members where m.mac == nil {
                out.append("\(m.name): a VNIC sharing a cap with others needs a MAC address (it tells them apart)")
            }
        }
        var floors: UInt64 = 0
        for m in members {
            if let f = m.floor {
                floors += f.bitsPerSecond
                if let c = m.maxbw, f > c { out.append("\(m.name): floor \(f) is above its maxbw \(c)") }
                if f.isBlocked { out.append("\(m.name): floor 0 means nothing; leave floor out") }
            }
            if let b = m.burst, b < 1514 { out.append("\(m.name): burst \(b) is smaller than one frame (1514 bytes)") }
            if let q = m.queueLimit, q < 1514 { out.append("\(m.name): queue \(q) is smaller than one frame (1514 bytes)") }
            out += FlowCap.problems(m.flows, of: m.name)
        }
        if let cap = maxbw, floors > cap.bitsPerSecond {
            out.append("cap group \(name): floors add up to \(Bitrate(bitsPerSecond: floors)), above its maxbw \(cap)")
        }
        return out
    }
}
