import CNetlinkRoute

/// Conversions between bytes at a rate and the kernel's psched ticks, which HTB's `buffer` and
/// `cbuffer` (and TBF's `buffer`) are expressed in. libnl-route reads `/proc/net/psched` for the
/// tick length the same way `tc` does.
public enum TickClock {
    /// Ticks needed to send `bytes` at `rate`.
    public static func ticks(bytes: UInt64, rate: Bitrate) -> UInt32 {
        guard rate.bytesPerSecond > 0 else { return 0 }
        let micros = (Double(bytes) * 1_000_000 / Double(rate.bytesPerSecond)).rounded(.up)
        return nl_us2ticks(UInt32(min(micros, Double(UInt32.max / 64))))
    }

    /// Bytes sent at `rate` during `ticks`.
    public static func bytes(ticks: UInt32, rate: Bitrate) -> UInt32 {
        let micros = Double(nl_ticks2us(ticks))
        return UInt32(min(Double(UInt32.max), (micros * Double(rate.bytesPerSecond) / 1_000_000).rounded()))
    }
}
