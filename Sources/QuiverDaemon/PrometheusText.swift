import Foundation

/// The Prometheus text exposition format (version 0.0.4), written directly: families in the
/// order first used, each with its HELP and TYPE line and its samples together, label values
/// escaped as the format says (`\\`, `\"`, `\n`). Linear in the number of samples — swift-prometheus
/// 2.4.1's registry copies a family's whole label table for every series it adds, which made
/// 51,000 series (1000 VNICs) take 9.9 s to render here (BENCHMARKS.md, bench/daemon).
public struct PrometheusText {
    enum Kind: String { case counter, gauge }

    private struct FamilyText {
        var name: String
        var help: String
        var kind: Kind
        /// The family's sample lines, as UTF-8.
        var lines: [UInt8] = []
        let nameBytes: [UInt8]

        init(name: String, help: String, kind: Kind) {
            (self.name, self.help, self.kind, nameBytes) = (name, help, kind, Array(name.utf8))
        }

        /// One line: `name{labels} value`.
        mutating func sample(_ labels: Labels, _ value: (inout [UInt8]) -> Void) {
            lines.append(contentsOf: nameBytes)
            if !labels.text.isEmpty {
                lines.append(UInt8(ascii: "{"))
                lines.append(contentsOf: labels.text)
                lines.append(UInt8(ascii: "}"))
            }
            lines.append(UInt8(ascii: " "))
            value(&lines)
            lines.append(UInt8(ascii: "\n"))
        }
    }

    private var families: [FamilyText] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// A series' labels, escaped once and reused for every family that carries them.
    public struct Labels {
        fileprivate var text: [UInt8] = []

        public init(_ pairs: [(String, String)] = []) {
            text.reserveCapacity(pairs.reduce(24) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
            for (k, v) in pairs { append(k, v) }
        }

        /// These labels and one more.
        public func adding(_ name: String, _ value: String) -> Labels {
            var l = self
            l.append(name, value)
            return l
        }

        private mutating func append(_ name: String, _ value: String) {
            if !text.isEmpty { text.append(UInt8(ascii: ",")) }
            text.append(contentsOf: name.utf8)
            text.append(contentsOf: "=\"".utf8)
            PrometheusText.escape(value, into: &text)
            text.append(UInt8(ascii: "\""))
        }
    }

    /// A family, named once: samples added through it skip the name lookup.
    public struct Family {
        fileprivate let index: Int
    }

    /// The family `name`, declared on first use (later calls return the same one). `expected`:
    /// bytes of samples to make room for at once (a guess; pages not written to cost nothing).
    mutating func family(_ name: String, _ help: String, _ kind: Kind, expected: Int = 0) -> Family {
        if let known = index[name] {
            precondition(families[known].kind == kind, "\(name) is a \(families[known].kind), not a \(kind)")
            return Family(index: known)
        }
        families.append(FamilyText(name: name, help: help, kind: kind))
        families[families.count - 1].lines.reserveCapacity(expected)
        index[name] = families.count - 1
        return Family(index: families.count - 1)
    }

    mutating func counter(_ name: String, _ help: String, _ labels: Labels, _ value: UInt64) {
        add(family(name, help, .counter), labels, value)
    }

    mutating func gauge(_ name: String, _ help: String, _ labels: Labels, _ value: Double) {
        add(family(name, help, .gauge), labels, value)
    }

    mutating func add(_ f: Family, _ labels: Labels, _ value: UInt64) {
        families[f.index].sample(labels) { Self.decimal(value, into: &$0) }
    }

    mutating func add(_ f: Family, _ labels: Labels, _ value: Double) {
        families[f.index].sample(labels) { Self.number(value, into: &$0) }
    }

    /// `v` in decimal, without an intermediate String or array.
    static func decimal(_ v: UInt64, into out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: UInt64.max has 20 digits
        withUnsafeMutableBytes(of: &digits) { buf in
            var n = v, i = buf.count
            repeat {
                i -= 1
                buf[i] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            } while n > 0
            out.append(contentsOf: buf[i...])
        }
    }

    /// The whole exposition, one family after another (families declared but given no sample
    /// are left out).
    public func render() -> String { String(decoding: bytes(), as: UTF8.self) }

    /// The same as UTF-8.
    public func bytes() -> [UInt8] { Exposition([self]).bytes() }

    /// Texts written apart (on threads of their own) as one exposition: each family once, in
    /// the order the parts first declare them, its samples from every part in the parts' order.
    /// It is handed out piece by piece (``write(_:)``), so the endpoint copies 5 MB once, into
    /// its socket buffer, instead of joining them first.
    public struct Exposition {
        private var order: [(heading: [UInt8], texts: [[UInt8]])] = []
        /// Its length in bytes.
        public private(set) var count = 0

        public init(_ parts: [PrometheusText]) {
            var slot: [String: Int] = [:]
            for p in parts {
                for f in p.families where !f.lines.isEmpty {
                    if slot[f.name] == nil {
                        slot[f.name] = order.count
                        order.append((Self.heading(f), []))
                        count += order[order.count - 1].heading.count
                    }
                    order[slot[f.name]!].texts.append(f.lines)
                    count += f.lines.count
                }
            }
        }

        /// A body that is not an exposition (the endpoint's other answers).
        static func plain(_ text: String) -> Exposition {
            var e = Exposition([])
            e.order = [(Array(text.utf8), [])]
            e.count = e.order[0].heading.count
            return e
        }

        /// Calls `piece` with each piece in order.
        public func write(_ piece: ([UInt8]) -> Void) {
            for f in order {
                piece(f.heading)
                f.texts.forEach(piece)
            }
        }

        public func bytes() -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(count)
            write { out.append(contentsOf: $0) }
            return out
        }

        /// A family's HELP and TYPE lines (in HELP, backslash and line feed escaped).
        private static func heading(_ f: FamilyText) -> [UInt8] {
            var out = Array("# HELP \(f.name) ".utf8)
            for b in f.help.utf8 {
                switch b {
                case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
                default: out.append(b)
                }
            }
            out.append(contentsOf: "\n# TYPE \(f.name) \(f.kind.rawValue)\n".utf8)
            return out
        }
    }

    /// A label value as the format quotes it: backslash, double quote and line feed escaped.
    static func escape(_ s: String, into out: inout [UInt8]) {
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
            default: out.append(b)
            }
        }
    }

    /// A sample value: whole numbers without a fraction, the rest as Swift prints a Double
    /// (which Prometheus' parser reads), and the format's spellings of NaN and infinities.
    static func number(_ v: Double) -> String {
        var out: [UInt8] = []
        number(v, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The same, appended (a whole number ≥ 0 — what most gauges are — without a String).
    static func number(_ v: Double, into out: inout [UInt8]) {
        if v.isNaN { return out.append(contentsOf: "NaN".utf8) }
        if v.isInfinite { return out.append(contentsOf: (v > 0 ? "+Inf" : "-Inf").utf8) }
        if v == v.rounded(), abs(v) < 9.007e15 {
            if v < 0 { out.append(UInt8(ascii: "-")) }
            return decimal(UInt64(abs(v)), into: &out)
        }
        out.append(contentsOf: "\(v)".utf8)
    }
}
