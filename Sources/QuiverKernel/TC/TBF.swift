import CNetlink
import QuiverNetlink

/// Token bucket filter: a classless shaper.
/// Equivalent to `tc qdisc add ... tbf rate R burst B limit L`.
public struct TBF: Sendable, Equatable {
    public var rate: Bitrate
    /// Bucket size in bytes.
    public var burst: UInt32
    /// Queue limit in bytes.
    public var limit: UInt32

    public init(rate: Bitrate, burst: UInt32, limit: UInt32) {
        self.rate = rate
        self.burst = burst
        self.limit = limit
    }

    func encodeOptions(into m: inout NetlinkMessage) {
        m.nest(TCA_OPTIONS) { o in
            var q = tc_tbf_qopt()
            q.rate = rateSpec(rate)
            q.limit = limit
            q.buffer = TickClock.ticks(bytes: UInt64(burst), rate: rate)
            o.put(TCA_TBF_PARMS, value: q)
            if rate.bytesPerSecond > UInt64(UInt32.max) { o.put(TCA_TBF_RATE64, u64: rate.bytesPerSecond) }
            // The burst in bytes: the kernel then needs no tick conversion of it.
            o.put(TCA_TBF_BURST, u32: burst)
        }
    }

    init(decoding o: NetlinkAttributes?) {
        let q = o?.value(TCA_TBF_PARMS, as: tc_tbf_qopt.self)
        let bytes = o?.u64(TCA_TBF_RATE64) ?? UInt64(q?.rate.rate ?? 0)
        let rate = Bitrate(bitsPerSecond: bytes * 8)
        self.rate = rate
        limit = q?.limit ?? 0
        burst = q.map { TickClock.bytes(ticks: $0.buffer, rate: rate) } ?? 0
    }
}
