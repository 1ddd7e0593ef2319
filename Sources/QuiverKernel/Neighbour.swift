import CNetlink
import QuiverNetlink

/// One entry of a neighbour table (`ndmsg`): a bridge or VXLAN forwarding entry (`AF_BRIDGE`),
/// or an ARP/ND entry (`AF_INET`, `AF_INET6`).
public struct Neighbour: Sendable, Equatable, Hashable {
    public var family: Int32
    public var ifindex: Int32
    /// `NUD_*`.
    public var state: UInt16
    /// `NTF_*`: `NTF_SELF` (the device's own table, e.g. a VXLAN's), `NTF_MASTER` (its bridge's).
    public var flags: UInt8
    /// The MAC (`NDA_LLADDR`).
    public var mac: MACAddress?
    /// An ARP/ND entry's address, or a VXLAN entry's remote tunnel endpoint (`NDA_DST`).
    public var destination: IPAddress?
    /// A bridge entry as dumped: the bridge (`NDA_MASTER`; dumps carry it instead of `NTF_MASTER`).
    public var master: Int32? = nil

    public init(family: Int32, ifindex: Int32, state: UInt16, flags: UInt8, mac: MACAddress?, destination: IPAddress?) {
        self.family = family
        self.ifindex = ifindex
        self.state = state
        self.flags = flags
        self.mac = mac
        self.destination = destination
    }

    public init(decoding message: ReceivedMessage) throws {
        let h = try message.header(as: ndmsg.self)
        let a = message.attributes(after: ndmsg.self)
        family = Int32(h.ndm_family)
        ifindex = h.ndm_ifindex
        state = h.ndm_state
        flags = h.ndm_flags
        mac = a.payload(NDA_LLADDR).flatMap { try? MACAddress(bytes: $0) }
        destination = a.payload(NDA_DST).flatMap { try? IPAddress(bytes: $0) }
        master = a.u32(NDA_MASTER).map { Int32(bitPattern: $0) }
    }

    /// A VXLAN device's entry: frames to `mac` (all zeros: every broadcast, multicast and unknown
    /// destination, once per such entry) go to `remote`. `bridge fdb append MAC dev VX dst REMOTE self permanent`.
    public static func tunnel(_ mac: MACAddress, remote: IPAddress, ifindex: Int32) -> Neighbour {
        Neighbour(family: AF_BRIDGE, ifindex: ifindex, state: UInt16(NUD_PERMANENT), flags: UInt8(NTF_SELF), mac: mac, destination: remote)
    }

    /// A static entry of the bridge a port belongs to: frames to `mac` leave through `ifindex`,
    /// and the bridge never learns it elsewhere. `bridge fdb add MAC dev PORT master static`.
    public static func bridgeStatic(_ mac: MACAddress, port ifindex: Int32) -> Neighbour {
        Neighbour(family: AF_BRIDGE, ifindex: ifindex, state: UInt16(NUD_NOARP), flags: UInt8(NTF_MASTER), mac: mac, destination: nil)
    }

    /// A permanent ARP/ND entry: `ip neigh replace ADDRESS lladdr MAC dev DEV nud permanent`.
    public static func address(_ address: IPAddress, mac: MACAddress, ifindex: Int32) -> Neighbour {
        Neighbour(family: address.family, ifindex: ifindex, state: UInt16(NUD_PERMANENT), flags: 0, mac: mac, destination: address)
    }

    public var isTunnel: Bool { family == AF_BRIDGE && flags & UInt8(NTF_SELF) != 0 && destination != nil }
    public var isBridgeStatic: Bool {
        family == AF_BRIDGE && flags & UInt8(NTF_SELF) == 0 && (flags & UInt8(NTF_MASTER) != 0 || master != nil) && state & UInt16(NUD_NOARP) != 0
            && state & UInt16(NUD_PERMANENT) == 0
    }
    public var isPermanentAddress: Bool { family != AF_BRIDGE && state & UInt16(NUD_PERMANENT) != 0 }

    var description: String {
        let what = family == AF_BRIDGE ? (flags & UInt8(NTF_SELF) != 0 ? "tunnel" : "bridge") : "neighbour"
        return "\(what) \(destination.map { "\($0) " } ?? "")\(mac?.description ?? "") on #\(ifindex)"
    }
}

public enum NeighbourRequest {
    static func message(_ type: Int, _ flags: Int32, _ n: Neighbour) -> NetlinkMessage {
        var m = NetlinkMessage(type: type, flags: flags)
        var h = ndmsg()
        h.ndm_family = UInt8(n.family)
        h.ndm_ifindex = n.ifindex
        h.ndm_state = n.state
        h.ndm_flags = n.flags
        m.append(header: h)
        if n.family == AF_BRIDGE {
            if let mac = n.mac { m.put(NDA_LLADDR, bytes: mac.bytes) }
            if let dst = n.destination { m.put(NDA_DST, bytes: dst.bytes) }
        } else {
            if let dst = n.destination { m.put(NDA_DST, bytes: dst.bytes) }
            if let mac = n.mac { m.put(NDA_LLADDR, bytes: mac.bytes) }
        }
        return m
    }

    /// Adds the entry. A tunnel entry is appended (a MAC may go to several remotes: the
    /// all-zero MAC goes to every peer); the others replace one of the same key.
    public static func add(_ n: Neighbour) -> NetlinkRequest {
        let flags = n.isTunnel ? NLM_F_CREATE | NLM_F_APPEND : NLM_F_CREATE | NLM_F_REPLACE
        return NetlinkRequest(message(RTM_NEWNEIGH, flags, n), RequestContext("add \(n.isTunnel ? "tunnel fdb entry" : n.family == AF_BRIDGE ? "bridge fdb entry" : "neighbour entry")", n.description))
    }

    /// Deletes exactly this entry (a tunnel entry: this remote only).
    public static func delete(_ n: Neighbour) -> NetlinkRequest {
        NetlinkRequest(message(RTM_DELNEIGH, 0, n), RequestContext("delete \(n.family == AF_BRIDGE ? "fdb entry" : "neighbour entry")", n.description))
    }

    /// Every entry of one family.
    public static func dump(family: Int32) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETNEIGH, flags: NLM_F_DUMP)
        var h = ndmsg()
        h.ndm_family = UInt8(family)
        m.append(header: h)
        return NetlinkRequest(m, RequestContext("list neighbour entries"))
    }
}

extension NetlinkHandle {
    /// The entries of `family` (`AF_BRIDGE`: every forwarding database; `AF_INET`, `AF_INET6`: ARP and ND).
    public func neighbours(family: Int32) throws -> [Neighbour] {
        let r = NeighbourRequest.dump(family: family)
        return try socket.dump(r.message, r.context).filter { $0.type == UInt16(RTM_NEWNEIGH) }.map(Neighbour.init(decoding:))
    }
}
