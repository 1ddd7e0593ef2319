/// FNV-1a: small, stable across runs and machines — for names, link groups and block indices
/// derived from topology names.
public enum StableHash {
    public static func fnv1a32(_ s: String) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for b in s.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        return h
    }

    public static func fnv1a64(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// `fnv1a32(s)` as eight lower-case hex digits (what names derived from a tag carry).
    public static func hex32(_ s: String) -> String {
        let h = String(fnv1a32(s), radix: 16)
        return String(repeating: "0", count: 8 - h.count) + h
    }
}
