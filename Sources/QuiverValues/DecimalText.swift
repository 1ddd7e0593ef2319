/// Numbers as users write them in files and arguments: ASCII decimal digits only. Swift's own
/// `Int(_:)` takes a sign (`+80`) and `Double(_:)` takes hexadecimal (`0x10` is 16), exponents
/// (`1e3`), `inf` and `nan`; none of that is a port, a size or a rate anyone means to write.
public enum DecimalText {
    /// A whole number written with digits only (`0`–`9`, at most 18 of them), or nil.
    public static func integer(_ text: some StringProtocol) -> UInt64? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 18, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return bytes.reduce(0) { $0 * 10 + UInt64($1 - 0x30) }
    }

    /// `digits` or `digits.digits`, exactly: the whole part and the fraction's digits and their
    /// count (`1.50` → (1, 50, 2)). Nil for anything else (signs, exponents, hexadecimal, `.5`,
    /// `5.`), or when either part has more than 18 digits.
    public static func fraction(_ text: some StringProtocol) -> (whole: UInt64, fraction: UInt64, digits: Int)? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = integer(parts[0]) else { return nil }
        guard parts.count == 2 else { return (whole, 0, 0) }
        guard let f = integer(parts[1]) else { return nil }
        return (whole, f, parts[1].utf8.count)
    }

    /// A decimal number as a `Double` (`2.5`, `10`), digits only as above.
    public static func double(_ text: some StringProtocol) -> Double? {
        guard let (w, f, n) = fraction(text) else { return nil }
        var scale = 1.0
        for _ in 0..<n { scale *= 10 }
        return Double(w) + Double(f) / scale
    }
}
