/// A rate in bits per second, written as dladm writes `maxbw`: `K`, `M`, `G` suffixes (powers of
/// 1000, bits), a bare number is Mbit/s, `0` means blocked. `1.5G` and lower-case suffixes work.
public struct Bitrate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let bitsPerSecond: UInt64

    public init(bitsPerSecond: UInt64) { self.bitsPerSecond = bitsPerSecond }

    public static func kbit(_ v: UInt64) -> Bitrate { Bitrate(bitsPerSecond: v * 1000) }
    public static func mbit(_ v: UInt64) -> Bitrate { Bitrate(bitsPerSecond: v * 1_000_000) }
    public static func gbit(_ v: UInt64) -> Bitrate { Bitrate(bitsPerSecond: v * 1_000_000_000) }

    /// Largest rate Quiver accepts (the kernel's 64-bit rates go further; nothing here does).
    public static let maximum = Bitrate.gbit(400)

    /// Smallest positive rate the kernel's shapers can honour (HTB and TBF keep rates in bytes
    /// per second; below 1000 bytes/s their rate tables lose the rate).
    public static let minimumPositive = Bitrate.kbit(8)

    /// Parses `50M`, `1.5G`, `500k`, `0`; a bare number is Mbit/s. The number is decimal digits
    /// with at most one `.` — no sign, exponent or hexadecimal — and must come to a whole number
    /// of bits per second. A positive rate below ``minimumPositive`` is an error, never a block.
    public init(_ text: String) throws(InvalidValue) {
        let t = text.trimmingCharacters(in: .whitespaces)
        var shown: String { InvalidValue.quoted(text) }
        guard let last = t.unicodeScalars.last else { throw InvalidValue("empty bandwidth; write e.g. 100M, 1G or 500K") }
        let multiplier: UInt64
        var number = Substring(t)
        switch last {
        case "k", "K": multiplier = 1000; number = number.dropLast()
        case "m", "M": multiplier = 1_000_000; number = number.dropLast()
        case "g", "G": multiplier = 1_000_000_000; number = number.dropLast()
        case "0"..."9": multiplier = 1_000_000 // a bare number is Mbit/s, as in dladm
        default:
            throw InvalidValue("unknown bandwidth unit in \(shown); use K, M or G (bits per second), e.g. 100M; a bare number is Mbit/s")
        }
        guard let (whole, fraction, digits) = DecimalText.fraction(number) else {
            throw InvalidValue("\(shown) is not a bandwidth: write a decimal number and a unit, e.g. 100M, 1.5G or 500K (no sign, exponent or hexadecimal)")
        }
        // Exact arithmetic: whole × unit + fraction × unit / 10^digits, refused when it leaves a
        // fraction of a bit or goes past the largest rate.
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let (w, overflowW) = whole.multipliedReportingOverflow(by: multiplier)
        let (f, overflowF) = fraction.multipliedReportingOverflow(by: multiplier)
        guard !overflowW, !overflowF, w <= Bitrate.maximum.bitsPerSecond else {
            throw InvalidValue("bandwidth \(shown) is above the \(Bitrate.maximum) Quiver supports")
        }
        guard f % scale == 0 else {
            throw InvalidValue("bandwidth \(shown) is not a whole number of bits per second; use a smaller unit, e.g. 1500K for 1.5M")
        }
        let bits = w + f / scale
        guard bits <= Bitrate.maximum.bitsPerSecond else {
            throw InvalidValue("bandwidth \(shown) is above the \(Bitrate.maximum) Quiver supports")
        }
        if bits > 0 && bits < Bitrate.minimumPositive.bitsPerSecond {
            throw InvalidValue("bandwidth \(shown) is below \(Bitrate.minimumPositive), the smallest rate the kernel's shapers can honour; use 0 to block")
        }
        bitsPerSecond = bits
    }

    public var isBlocked: Bool { bitsPerSecond == 0 }
    public var bytesPerSecond: UInt64 { bitsPerSecond / 8 }

    /// Short exact dladm-style text that reads back as the same rate: `50M`, `1.5G`, `2500K`,
    /// `10.001K`, `0`. (Never a bare number: that would read back as Mbit/s.)
    public var description: String {
        let b = bitsPerSecond
        if b == 0 { return "0" }
        for (div, suffix) in [(UInt64(1_000_000_000), "G"), (1_000_000, "M"), (1000, "K")] where b >= div {
            if b % div == 0 { return "\(b / div)\(suffix)" }
            if b % (div / 10) == 0 { return "\(b / div).\((b % div) / (div / 10))\(suffix)" }
        }
        // Kbit/s with the bits as a fraction: 10001 bit/s is 10.001K.
        var fraction = String(b % 1000)
        fraction = String(repeating: "0", count: 3 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(b / 1000)" + (fraction.isEmpty ? "" : "." + fraction) + "K"
    }

    public static func < (a: Bitrate, b: Bitrate) -> Bool { a.bitsPerSecond < b.bitsPerSecond }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(UInt64.self) { try self.init("\(n)") } else { try self.init(c.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

import Foundation
