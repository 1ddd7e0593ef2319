import QuiverKernel

/// Bucket and queue sizes for a shaped rate — the one place they are computed.
///
/// - burst: what a class may send at once. Too small and the shaper cannot keep up with the
///   timer at high rates (tc's default of about one MTU falls short at gigabit rates); too large
///   and a low cap runs at line rate for a while (Kubernetes' 2^31-bit default does; the numbers
///   are in docs/BANDWIDTH.md). Quiver uses `burstTime` of traffic at the rate,
///   never less than two full frames, never more than `maxBurst`.
/// - queue limit: bytes waiting behind the shaper, i.e. the latency a saturated cap adds to bulk
///   traffic. Quiver uses `latencyTarget` at the rate, never less than `minQueue`. Small packets
///   (ACKs, pings, DNS) do not wait behind it: each VNIC has a priority leaf for them.
/// - leaf queue: a TBF used only as a byte-limited FIFO that splits TSO/GSO super-packets
///   (up to 64 KiB) into frames when they are large next to the queue. A plain bfifo of a few KiB would drop such a super-packet whole,
///   every time, and TCP through a low cap collapses (measured here: 0.3 Mbit/s through a 2 Mbit/s
///   cap). Its own rate is far above any cap, so HTB alone decides when packets leave.
/// - quantum: bytes per DRR round when siblings share spare bandwidth; set explicitly so the kernel
///   never derives a bad one from r2q (and never warns).
public struct ShapingPolicy: Sendable, Equatable {
    public var mtu: Int = 1500
    public var burstTime: Double = 0.010
    public var maxBurst: UInt32 = 64 << 20
    public var latencyTarget: Double = 0.005
    /// A TCP window of a few frames cannot keep a slow link busy: measured here, 3 frames gave
    /// 0.70 of a 2M cap and 4 frames 0.85 of a 10M cap; 8 frames give the full rate.
    public var minQueue: UInt32 = 8 * 1514
    public var maxQueue: UInt32 = 256 << 20
    /// The least queue behind a guest's outbound classes. A namespace's TCP waits for its own
    /// packets to leave the host's queues (TCP small queues), so it never sends far ahead of its
    /// cap; a guest's TCP is told a packet is gone as soon as qemu has copied it, and sends its
    /// window in bursts of 64 KiB super-packets. A 5 ms queue (31 KiB at 50M) drops most of
    /// such a burst, and the guest's retransmission timeouts cost it a quarter of its cap at
    /// times (measured: 0.73–0.87 of 50M in some 3 s transfers from a Debian guest, 0.999–1.001
    /// with this floor). Two super-packets' worth holds one burst whole. Only its bulk and flow
    /// leaves get it: its small packets (ACKs, pings) keep their own short leaf.
    public var guestMinQueue: UInt32 = 128 << 10

    public init() {}

    /// A full Ethernet frame.
    public var frame: UInt32 { UInt32(mtu + 14) }

    public func burst(for rate: Bitrate) -> UInt32 {
        let bytes = Double(rate.bytesPerSecond) * burstTime
        return UInt32(min(Double(maxBurst), max(Double(2 * frame), bytes.rounded(.up))))
    }

    /// The queue of a guest's outbound bulk leaf: the usual one, but at least ``guestMinQueue``.
    public func guestQueueLimit(for rate: Bitrate) -> UInt32 {
        rate.isBlocked ? 0 : max(queueLimit(for: rate), min(maxQueue, guestMinQueue))
    }

    public func queueLimit(for rate: Bitrate) -> UInt32 {
        if rate.isBlocked { return 0 }
        let bytes = Double(rate.bytesPerSecond) * latencyTarget
        return UInt32(min(Double(maxQueue), max(Double(minQueue), bytes.rounded(.up))))
    }

    /// Rate of the segmenting leaf TBF: never the bottleneck.
    public var segmenterRate = Bitrate.gbit(100)

    /// The queue under a leaf class: drops everything for a blocked (0) rate. `limit` overrides
    /// the computed queue size.
    public func leafQueue(for rate: Bitrate, limit override: UInt32? = nil) -> QdiscKind {
        let limit = rate.isBlocked ? 0 : (override ?? queueLimit(for: rate))
        if limit == 0 { return .bfifo(limit: 0) }
        return .tbf(TBF(rate: segmenterRate, burst: segmentAbove(limit: limit), limit: limit))
    }

    /// Largest packet the leaf passes whole (the TBF's burst): a quarter of the queue, at least two
    /// frames. At low rates TSO super-packets are split so several fit the queue; at high rates,
    /// where the queue holds many of them, they pass whole — splitting 5 Gbit/s into frames costs
    /// more CPU than two cores have (measured: 0.84 of a 5G cap when always split).
    public func segmentAbove(limit: UInt32) -> UInt32 {
        max(2 * frame, min(limit / 4, 128 << 10))
    }

    public func quantum(for rate: Bitrate) -> UInt32 {
        // One frame per round at low rates, up to the kernel's own upper bound.
        UInt32(min(200_000, max(UInt64(frame), rate.bytesPerSecond / 1000)))
    }

    /// The HTB parameters of a class with these rates; `burst` overrides both bucket sizes.
    public func htb(rate: Bitrate, ceil: Bitrate, priority: UInt32 = 0, burst override: UInt32? = nil) -> HTBClass {
        HTBClass(rate: rate, ceil: ceil, burst: override ?? burst(for: rate), cburst: override ?? burst(for: ceil),
                 priority: priority, quantum: quantum(for: rate))
    }
}
