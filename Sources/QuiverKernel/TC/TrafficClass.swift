import CNetlink
import QuiverNetlink

/// An HTB class: a guaranteed `rate`, a `ceil` it may borrow up to, bucket sizes, priority and
/// DRR quantum. Equivalent to `tc class add dev DEV parent P classid C htb rate R ceil C burst B
/// cburst CB prio N quantum Q`.
public struct HTBClass: Sendable, Equatable {
    public var rate: Bitrate
    public var ceil: Bitrate
    /// Bytes that may go at once at `rate` / at `ceil`.
    public var burst: UInt32
    public var cburst: UInt32
    public var priority: UInt32
    /// Bytes served per round when siblings share excess bandwidth. Set explicitly, so the kernel
    /// never derives one from r2q (and never warns that it is too big or too small).
    public var quantum: UInt32

    public init(rate: Bitrate, ceil: Bitrate, burst: UInt32, cburst: UInt32, priority: UInt32 = 0, quantum: UInt32) {
        self.rate = rate
        self.ceil = ceil
        self.burst = burst
        self.cburst = cburst
        self.priority = priority
        self.quantum = quantum
    }

    func encodeOptions(into m: inout NetlinkMessage) {
        m.nest(TCA_OPTIONS) { o in
            var p = tc_htb_opt()
            p.rate = rateSpec(rate)
            p.ceil = rateSpec(ceil)
            p.buffer = TickClock.ticks(bytes: UInt64(burst), rate: rate)
            p.cbuffer = TickClock.ticks(bytes: UInt64(cburst), rate: ceil)
            p.quantum = quantum
            p.prio = priority
            o.put(TCA_HTB_PARMS, value: p)
            if rate.bytesPerSecond > UInt64(UInt32.max) { o.put(TCA_HTB_RATE64, u64: rate.bytesPerSecond) }
            if ceil.bytesPerSecond > UInt64(UInt32.max) { o.put(TCA_HTB_CEIL64, u64: ceil.bytesPerSecond) }
        }
    }

    init(decoding o: NetlinkAttributes?) {
        let p = o?.value(TCA_HTB_PARMS, as: tc_htb_opt.self)
        let rate = Bitrate(bitsPerSecond: 8 * (o?.u64(TCA_HTB_RATE64) ?? UInt64(p?.rate.rate ?? 0)))
        let ceil = Bitrate(bitsPerSecond: 8 * (o?.u64(TCA_HTB_CEIL64) ?? UInt64(p?.ceil.rate ?? 0)))
        self.rate = rate
        self.ceil = ceil
        burst = p.map { TickClock.bytes(ticks: $0.buffer, rate: rate) } ?? 0
        cburst = p.map { TickClock.bytes(ticks: $0.cbuffer, rate: ceil) } ?? 0
        priority = p?.prio ?? 0
        quantum = p?.quantum ?? 0
    }
}

/// A class as the kernel reports it, with its counters.
public struct TrafficClass: Sendable, Equatable {
    public var ifindex: Int32
    public var handle: TCHandle
    public var parent: TCHandle
    public var kind: String
    /// Set for HTB classes.
    public var htb: HTBClass?
    public var statistics: TCStatistics
    /// HTB: times the class lent to / borrowed from others (`tc_htb_xstats`).
    public var lends: UInt32 = 0
    public var borrows: UInt32 = 0

    public init(decoding message: ReceivedMessage) throws {
        let h = try message.header(as: tcmsg.self)
        let a = message.attributes(after: tcmsg.self)
        ifindex = h.tcm_ifindex
        handle = TCHandle(rawValue: h.tcm_handle)
        parent = TCHandle(rawValue: h.tcm_parent)
        kind = a.string(TCA_KIND) ?? ""
        htb = kind == "htb" ? HTBClass(decoding: a.nested(TCA_OPTIONS)) : nil
        statistics = TCStatistics(decoding: a)
        if kind == "htb", let x = a.nested(TCA_STATS2)?.value(TCA_STATS_APP, as: tc_htb_xstats.self) {
            lends = x.lends
            borrows = x.borrows
        }
    }
}

public enum ClassRequest {
    /// `tc class {add|replace|change} dev DEV parent P classid C htb ...`. `change` alters a live
    /// class in place: traffic keeps flowing and nothing is re-created.
    public static func make(_ verb: TCVerb, ifindex: Int32, device: String, classID: TCHandle, parent: TCHandle,
                            htb: HTBClass) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_NEWTCLASS, flags: verb.flags)
        m.append(header: tcHeader(ifindex: ifindex, handle: classID, parent: parent))
        m.put(TCA_KIND, string: "htb")
        htb.encodeOptions(into: &m)
        return NetlinkRequest(m, RequestContext("\(verb.word) htb class \(classID) on", device))
    }

    /// `tc class del dev DEV classid C`.
    public static func delete(ifindex: Int32, device: String, classID: TCHandle) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_DELTCLASS, flags: 0)
        m.append(header: tcHeader(ifindex: ifindex, handle: classID, parent: .unspecified))
        return NetlinkRequest(m, RequestContext("delete class \(classID) from", device))
    }

    /// `tc class show dev DEV`.
    public static func dump(ifindex: Int32) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETTCLASS, flags: NLM_F_DUMP)
        m.append(header: tcHeader(ifindex: ifindex, handle: .unspecified, parent: .unspecified))
        return NetlinkRequest(m, RequestContext("list classes of link", "#\(ifindex)"))
    }
}

extension NetlinkHandle {
    /// Classes of a device with their counters. Equivalent to `tc -s class show dev DEV`.
    public func classes(ifindex: Int32) throws -> [TrafficClass] {
        let r = ClassRequest.dump(ifindex: ifindex)
        return try socket.dump(r.message, r.context)
            .filter { $0.type == UInt16(RTM_NEWTCLASS) }
            .map(TrafficClass.init(decoding:))
    }
}
