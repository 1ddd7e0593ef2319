import Foundation

/// The Prometheus text exposition format (version 0.0.4), written directly: families in the
/// order first used, each with its HELP and TYPE line and its samples together, label values
/// escaped as the format says (`\\`, `\"`, `\n`). Linear in the number of samples — swift-prometheus
/// 2.4.1's registry copies a family's whole label table for every series it adds, which made
/// 51,000 series (1000 VNICs) take 9.9 s to render here (BENCHMARKS.md, bench/daemon).
public struct PrometheusText {
    enum Kind: String { case counter, gauge }

    private struct Family {
        var name: String
        var help: String
        var kind: Kind
        /// The family's sample lines, as UTF-8.
        var lines: [UInt8] = []
    }

    private var families: [Family] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// A series' labels, escaped once and reused for every family that carries them.
    public struct Labels {
        fileprivate var text: [UInt8] = []

        public init(_ pairs: [(String, String)] = []) {
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

    mutating func counter(_ name: String, _ help: String, _ labels: Labels, _ value: UInt64) {
        let i = family(name, help, .counter)
        start(i, name, labels)
        Self.decimal(value, into: &families[i].lines)
        families[i].lines.append(UInt8(ascii: "\n"))
    }

    mutating func gauge(_ name: String, _ help: String, _ labels: Labels, _ value: Double) {
        let i = family(name, help, .gauge)
        start(i, name, labels)
        families[i].lines.append(contentsOf: Self.number(value).utf8)
        families[i].lines.append(UInt8(ascii: "\n"))
    }

    private mutating func family(_ name: String, _ help: String, _ kind: Kind) -> Int {
        if let known = index[name] {
            precondition(families[known].kind == kind, "\(name) is a \(families[known].kind), not a \(kind)")
            return known
        }
        families.append(Family(name: name, help: help, kind: kind))
        index[name] = families.count - 1
        return families.count - 1
    }

    /// A sample line up to its value: `name{labels} `.
    private mutating func start(_ i: Int, _ name: String, _ labels: Labels) {
        families[i].lines.append(contentsOf: name.utf8)
        if !labels.text.isEmpty {
            families[i].lines.append(UInt8(ascii: "{"))
            families[i].lines.append(contentsOf: labels.text)
            families[i].lines.append(UInt8(ascii: "}"))
        }
        families[i].lines.append(UInt8(ascii: " "))
    }

    static func decimal(_ v: UInt64, into out: inout [UInt8]) {
        guard v > 0 else { return out.append(UInt8(ascii: "0")) }
        var digits: [UInt8] = []
        var n = v
        while n > 0 {
            digits.append(UInt8(ascii: "0") + UInt8(n % 10))
            n /= 10
        }
        out.append(contentsOf: digits.reversed())
    }

    /// The whole exposition, one family after another.
    public func render() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(families.reduce(0) { $0 + $1.lines.count + 200 })
        for f in families {
            out.append(contentsOf: "# HELP \(f.name) ".utf8)
            for b in f.help.utf8 {
                switch b {
                case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
                default: out.append(b)
                }
            }
            out.append(contentsOf: "\n# TYPE \(f.name) \(f.kind.rawValue)\n".utf8)
            out.append(contentsOf: f.lines)
        }
        return String(decoding: out, as: UTF8.self)
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
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 9.007e15 { return String(Int64(v)) }
        return "\(v)"
    }
}
