import CNetlink
import QuiverNetlink

/// Every link's 64-bit counters by index, from one `RTM_GETSTATS` dump that asks only for
/// `IFLA_STATS_LINK_64` (what `ip stats show group link` reads). It carries no names and no
/// other attributes. In a namespace holding a thousand veths whose peers sit in other
/// namespaces, a link dump spends much of its kernel time looking up each peer's namespace id;
/// this dump never does. Readers that already know the names by index (``StatsReader``) use it.
public enum LinkCounterRequest {
    /// `IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64)`.
    static let link64Bit = UInt32(1) << (UInt32(IFLA_STATS_LINK_64) - 1)

    public static func dump() -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETSTATS, flags: NLM_F_DUMP)
        var h = if_stats_msg()
        h.family = UInt8(AF_UNSPEC)
        h.filter_mask = link64Bit
        m.append(header: h)
        return NetlinkRequest(m, RequestContext("list link counters"))
    }

    /// One `RTM_NEWSTATS` message: the link's index and counters (nil without `IFLA_STATS_LINK_64`).
    public static func decode(_ message: ReceivedMessage) throws -> (index: Int32, statistics: LinkStatistics?) {
        let h = try message.header(as: if_stats_msg.self)
        let a = message.attributes(after: if_stats_msg.self)
        return (Int32(bitPattern: h.ifindex), a.value(IFLA_STATS_LINK_64, as: rtnl_link_stats64.self).map(LinkStatistics.init))
    }
}

extension NetlinkHandle {
    /// Counters of every link in the namespace, by index.
    public func linkCounters() throws -> [Int32: LinkStatistics] {
        let request = LinkCounterRequest.dump()
        var out: [Int32: LinkStatistics] = [:]
        for m in try socket.dump(request.message, request.context) where m.type == UInt16(RTM_NEWSTATS) {
            let (index, s) = try LinkCounterRequest.decode(m)
            out[index] = s ?? LinkStatistics()
        }
        return out
    }
}
