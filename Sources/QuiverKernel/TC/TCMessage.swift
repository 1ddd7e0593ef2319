import CNetlink
import QuiverNetlink

/// The `tcmsg` every qdisc, class and filter request starts with.
func tcHeader(ifindex: Int32, handle: TCHandle, parent: TCHandle, info: UInt32 = 0) -> tcmsg {
    var h = tcmsg()
    h.tcm_family = UInt8(AF_UNSPEC)
    h.tcm_ifindex = ifindex
    h.tcm_handle = handle.rawValue
    h.tcm_parent = parent.rawValue
    h.tcm_info = info
    return h
}

/// How a tc request treats an existing object of the same handle.
public enum TCVerb: Sendable {
    /// `tc ... add`: create, fail if it exists (`NLM_F_CREATE|NLM_F_EXCL`).
    case add
    /// `tc ... replace`: create or replace (`NLM_F_CREATE|NLM_F_REPLACE`).
    case replace
    /// `tc ... change`: change in place, fail if missing (no flags).
    case change

    var flags: Int32 {
        switch self {
        case .add: return NLM_F_CREATE | NLM_F_EXCL
        case .replace: return NLM_F_CREATE | NLM_F_REPLACE
        case .change: return 0
        }
    }

    var word: String {
        switch self { case .add: return "add"; case .replace: return "replace"; case .change: return "change" }
    }
}

/// Rate spec for HTB/TBF: link-layer aware (Ethernet), so the kernel needs no rate table.
func rateSpec(_ rate: Bitrate) -> tc_ratespec {
    var r = tc_ratespec()
    r.linklayer = UInt8(TC_LINKLAYER_ETHERNET.rawValue)
    r.rate = UInt32(min(rate.bytesPerSecond, UInt64(UInt32.max)))
    return r
}

/// Counters the kernel keeps for a qdisc or class (`TCA_STATS2`).
public struct TCStatistics: Sendable, Equatable, Codable {
    public var bytes: UInt64 = 0
    public var packets: UInt64 = 0
    public var drops: UInt32 = 0
    public var overlimits: UInt32 = 0
    public var requeues: UInt32 = 0
    /// Bytes and packets queued right now.
    public var backlog: UInt32 = 0
    public var queueLength: UInt32 = 0

    public init() {}

    init(decoding a: NetlinkAttributes) {
        guard let s = a.nested(TCA_STATS2) else { return }
        if let basic = s.value(TCA_STATS_BASIC, as: gnet_stats_basic.self) {
            bytes = basic.bytes
            packets = UInt64(basic.packets)
        }
        if let p64 = s.u64(TCA_STATS_PKT64) { packets = p64 }
        if let q = s.value(TCA_STATS_QUEUE, as: gnet_stats_queue.self) {
            drops = q.drops
            overlimits = q.overlimits
            requeues = q.requeues
            backlog = q.backlog
            queueLength = q.qlen
        }
    }
}
