import CNetlink
import QuiverNetlink

/// A unicast route in the main table.
public struct Route: Sendable, Equatable {
    /// nil: the default route.
    public var destination: IPPrefix?
    public var gateway: IPAddress?
    public var outputIndex: Int32?
    public var family: Int32

    public init(destination: IPPrefix?, gateway: IPAddress? = nil, outputIndex: Int32? = nil, family: Int32? = nil) {
        self.destination = destination
        self.gateway = gateway
        self.outputIndex = outputIndex
        self.family = family ?? destination?.address.family ?? gateway?.family ?? AF_INET
    }

    public init(decoding message: ReceivedMessage) throws {
        let h = try message.header(as: rtmsg.self)
        let a = message.attributes(after: rtmsg.self)
        family = Int32(h.rtm_family)
        if let dst = a.payload(RTA_DST.rawValue) {
            destination = try IPPrefix(address: IPAddress(bytes: dst), length: Int(h.rtm_dst_len))
        }
        gateway = a.payload(RTA_GATEWAY.rawValue).flatMap { try? IPAddress(bytes: $0) }
        outputIndex = a.s32(RTA_OIF.rawValue)
    }

    var description: String {
        (destination?.description ?? "default") + (gateway.map { " via \($0)" } ?? "")
    }
}

public enum RouteRequest {
    static func message(_ type: Int, _ flags: Int32, _ route: Route) -> NetlinkMessage {
        var m = NetlinkMessage(type: type, flags: flags)
        var h = rtmsg()
        h.rtm_family = UInt8(route.family)
        h.rtm_dst_len = UInt8(route.destination?.length ?? 0)
        h.rtm_table = UInt8(RT_TABLE_MAIN.rawValue)
        h.rtm_protocol = UInt8(RTPROT_STATIC)
        h.rtm_type = UInt8(RTN_UNICAST)
        // A route without a gateway reaches hosts on the link directly.
        h.rtm_scope = route.gateway == nil ? UInt8(RT_SCOPE_LINK.rawValue) : UInt8(RT_SCOPE_UNIVERSE.rawValue)
        m.append(header: h)
        if let dst = route.destination { m.put(RTA_DST.rawValue, bytes: dst.network.address.bytes) }
        if let gw = route.gateway { m.put(RTA_GATEWAY.rawValue, bytes: gw.bytes) }
        if let oif = route.outputIndex { m.put(RTA_OIF.rawValue, u32: UInt32(bitPattern: oif)) }
        return m
    }

    /// `ip route add {default|PREFIX} [via GW] [dev LINK]` (`replace` for `ip route replace`).
    public static func add(_ route: Route, replace: Bool = false) -> NetlinkRequest {
        NetlinkRequest(message(RTM_NEWROUTE, replace ? NLM_F_CREATE | NLM_F_REPLACE : NLM_F_CREATE | NLM_F_EXCL, route),
                       RequestContext("add route", route.description))
    }

    /// `ip route del {default|PREFIX} [via GW]`.
    public static func delete(_ route: Route) -> NetlinkRequest {
        NetlinkRequest(message(RTM_DELROUTE, 0, route), RequestContext("delete route", route.description))
    }

    /// Routes of the main table: on a socket with strict checking the kernel skips the other
    /// tables (the local table holds a few routes per address) instead of sending them.
    public static func dump(family: Int32 = AF_UNSPEC) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETROUTE, flags: NLM_F_DUMP)
        var h = rtmsg()
        h.rtm_family = UInt8(family)
        h.rtm_table = UInt8(RT_TABLE_MAIN.rawValue)
        m.append(header: h)
        return NetlinkRequest(m, RequestContext("list routes"))
    }
}

extension NetlinkHandle {
    /// Equivalent to `ip route add ...`.
    public func addRoute(_ route: Route, replace: Bool = false) throws {
        try perform(RouteRequest.add(route, replace: replace))
    }

    /// Equivalent to `ip route del ...`.
    public func deleteRoute(_ route: Route) throws {
        try perform(RouteRequest.delete(route))
    }

    /// Routes of the main table. Equivalent to `ip route show` (and `ip -6 route show`): one
    /// dump per family, which the kernel serves without the RTNL lock.
    public func routes(family: Int32 = AF_UNSPEC) throws -> [Route] {
        if family == AF_UNSPEC { return try routes(family: AF_INET) + routes(family: AF_INET6) }
        let r = RouteRequest.dump(family: family)
        let replies: [ReceivedMessage]
        do {
            replies = try socket.dump(r.message, r.context)
        } catch let e as NetlinkError where e.errno == .noSuchFileOrDirectory {
            // IPv4 makes its main table with the first route: a namespace without one has none.
            return []
        }
        return try replies
            .filter { $0.type == UInt16(RTM_NEWROUTE) }
            .filter { (try? $0.header(as: rtmsg.self).rtm_table) == UInt8(RT_TABLE_MAIN.rawValue) }
            .map(Route.init(decoding:))
    }
}
