import Foundation

/// Writes what the plugin prints — a result passed through from `prevResult`, a VERSION answer,
/// an error object — as JSON (RFC 8259). The values are what `JSONSerialization` parsed (String,
/// NSNumber, its boolean, NSNull, `[Any]`, `[String: Any]`) and the plugin's own (String, Int,
/// Bool, arrays and dictionaries of them).
///
/// Why not `JSONSerialization.data(withJSONObject:)`: it bridges every dictionary to an
/// NSDictionary and every value through dynamic casts, and in a process that lives for one call
/// each of those first casts scans the binary's ~5,600 protocol conformances. That was a tenth of
/// a VERSION call's time and about 1 ms of an ADD (BENCHMARKS.md, bench/cni latency).
enum CNIJSONWriter {
    /// `value` as JSON; `sortedKeys`: object keys in byte order (error objects, for people).
    static func data(_ value: Any, sortedKeys: Bool = false) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        write(value, sortedKeys, into: &out)
        return Data(out)
    }

    private static func write(_ value: Any, _ sorted: Bool, into out: inout [UInt8]) {
        // A parsed number first, told by its class alone: cast to Bool, an NSNumber 1 would
        // read as `true`.
        if type(of: value) is NSNumber.Type { return number(value as! NSNumber, into: &out) }
        switch value {
        case let s as String:
            string(s, into: &out)
        case let b as Bool:
            out.append(contentsOf: (b ? "true" : "false").utf8)
        case let i as Int:
            out.append(contentsOf: String(i).utf8)
        case let o as [String: Any]:
            out.append(UInt8(ascii: "{"))
            let keys = sorted ? o.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) } : Array(o.keys)
            for (i, k) in keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                string(k, into: &out)
                out.append(UInt8(ascii: ":"))
                write(o[k]!, sorted, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let a as [String]:
            list(a, into: &out) { string($0, into: &$1) }
        case let a as [[String: Any]]:
            list(a, into: &out) { write($0, sorted, into: &$1) }
        case let a as [Any]:
            list(a, into: &out) { write($0, sorted, into: &$1) }
        case let d as Double where d.isFinite:
            out.append(contentsOf: "\(d)".utf8)
        default:
            // NSNull, and anything that has no JSON form (which the plugin never builds).
            out.append(contentsOf: "null".utf8)
        }
    }

    private static func list<T>(_ a: [T], into out: inout [UInt8], _ element: (T, inout [UInt8]) -> Void) {
        out.append(UInt8(ascii: "["))
        for (i, e) in a.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            element(e, &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// A parsed number as it came: `true` and `false` (JSONSerialization's booleans are NSNumbers
    /// of type `c`; it makes no other `c`), integers in decimal (all 64 bits of either sign),
    /// whole doubles below 10¹⁵ as integers, other doubles as Swift prints them (the shortest
    /// form that reads back the same; JSON has no NaN or infinity, and parsing never makes one).
    private static func number(_ n: NSNumber, into out: inout [UInt8]) {
        switch String(cString: n.objCType) {
        case "c", "B":
            out.append(contentsOf: (n.boolValue ? "true" : "false").utf8)
        case "d", "f":
            // A whole number in whole digits, as JSONSerialization writes one (2.0 is 2).
            let d = n.doubleValue
            if d == d.rounded(), abs(d) < 1e15 { return out.append(contentsOf: String(Int64(d)).utf8) }
            out.append(contentsOf: (d.isFinite ? "\(d)" : "null").utf8)
        case "Q", "L", "I", "S", "C":
            out.append(contentsOf: String(n.uint64Value).utf8)
        default:
            out.append(contentsOf: String(n.int64Value).utf8)
        }
    }

    /// A string with `"`, `\` and the control characters escaped (RFC 8259 section 7); the rest
    /// is written as its UTF-8.
    static func string(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xF)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
