import QuiverValues
import Yams

/// How the parser reads one node: its place, its shape (mapping, sequence, scalar), its keys
/// against the field table, and the typed values in it — each problem reported at its
/// line:column, the value left out.
extension TopologyParser {
    func loc(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0)
    }

    func yamlError(_ e: YamlError) -> TopologyError {
        switch e {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return TopologyError(SourceLocation(file: file, line: mark.line, column: mark.column), "YAML syntax: \(problem)",
                                 hint: "check indentation and quoting here")
        default:
            return TopologyError(SourceLocation(file: file, line: 1, column: 1), "YAML syntax: \(e)")
        }
    }

    mutating func mapping(_ node: Node, _ what: String) -> Node.Mapping? {
        if let m = node.mapping { return m }
        report(TopologyError(loc(node), "\(what) must be a mapping of keys to values", hint: "write `key: value` lines"))
        return nil
    }

    mutating func sequence(_ node: Node, _ key: String) -> [Node] {
        if let s = node.sequence { return Array(s) }
        report(TopologyError(loc(node), "`\(key)` must be a list", hint: "write `\(key): [a, b]` or one `- item` per line"))
        return []
    }

    mutating func list(_ m: Node.Mapping, _ key: String) -> [Node] {
        guard let n = m[key: key] else { return [] }
        if case .scalar(let s) = n, s.string == "" || s.string == "~" || s.string == "null" { return [] }
        return sequence(n, key)
    }

    mutating func scalar(_ node: Node, _ key: String) -> String? {
        if let s = node.scalar { return s.string }
        report(TopologyError(loc(node), "`\(key)` must be a single value"))
        return nil
    }

    mutating func requiredString(_ m: Node.Mapping, _ key: String, in what: String) -> String? {
        guard let n = m[key: key] else {
            report(TopologyError(locOf(m), "\(what) has no `\(key)`", hint: "add `\(key): ...`"))
            return nil
        }
        guard let s = scalar(n, key), !s.isEmpty else {
            report(TopologyError(loc(n), "`\(key)` is empty"))
            return nil
        }
        return s
    }

    func locOf(_ m: Node.Mapping) -> SourceLocation {
        SourceLocation(file: file, line: m.mark?.line ?? 0, column: m.mark?.column ?? 0)
    }

    /// Unknown keys are errors — the keys a mapping may hold are its section's in
    /// ``TopologyFields`` — with the closest known key suggested; so is a key written twice in
    /// one mapping (`key-duplicates`, as yamllint calls it).
    mutating func check(_ m: Node.Mapping, _ section: FieldSection) {
        let allowed = section.keys, what = section.what
        var seen: [String: SourceLocation] = [:]
        for (k, _) in m {
            guard case .scalar(_) = k, let key = k.string else {
                report(TopologyError(loc(k), "keys must be plain words"))
                continue
            }
            if !allowed.contains(key) {
                report(TopologyError(loc(k), "unknown key `\(InvalidValue.escaped(key))` in \(what)",
                                     hint: "known keys: \(allowed.joined(separator: ", "))" + suggestion(key, allowed)))
            } else if let first = seen[key] {
                report(TopologyError(loc(k), "duplicate key `\(key)` in \(what)",
                                     hint: "first at \(first.line):\(first.column); write each key once (YAML would keep only the last)"))
            }
            seen[key] = seen[key] ?? loc(k)
        }
    }

    func suggestion(_ word: String, _ candidates: [String]) -> String {
        guard word.count <= 64 else { return "" }
        let normalized = word.lowercased().replacingOccurrences(of: "_", with: "-")
        guard let best = candidates.min(by: { distance(normalized, $0) < distance(normalized, $1) }),
              distance(normalized, best) <= max(2, best.count / 3) else { return "" }
        return "; did you mean `\(best)`?"
    }

    mutating func rate(_ m: Node.Mapping, _ key: String) -> Bitrate? {
        guard let n = m[key: key], let s = scalar(n, key) else { return nil }
        do { return try Bitrate(s) } catch {
            report(TopologyError(loc(n), "\(key): \(error)"))
            return nil
        }
    }

    mutating func uint32(_ m: Node.Mapping, _ key: String, in range: ClosedRange<UInt32> = 68...65535) -> UInt32? {
        guard let n = m[key: key], let s = scalar(n, key) else { return nil }
        guard let v = DecimalText.integer(s).flatMap({ UInt32(exactly: $0) }), range.contains(v) else {
            report(TopologyError(loc(n), "\(key) \(InvalidValue.quoted(s)) must be a number from \(range.lowerBound) to \(range.upperBound)"))
            return nil
        }
        return v
    }

    /// A size in bytes (burst, queue).
    mutating func byteCount(_ m: Node.Mapping, _ key: String) -> UInt32? {
        guard let n = m[key: key], let s = scalar(n, key) else { return nil }
        guard let v = DecimalText.integer(s).flatMap({ UInt32(exactly: $0) }), v >= 1514 else {
            report(TopologyError(loc(n), "\(key) \(InvalidValue.quoted(s)) must be a number of bytes from 1514 (one frame) to \(UInt32.max)", hint: "e.g. \(key): 65536"))
            return nil
        }
        return v
    }

    mutating func port(_ m: Node.Mapping, _ key: String) -> UInt16? {
        guard let n = m[key: key], let s = scalar(n, key) else { return nil }
        guard let v = DecimalText.integer(s).flatMap({ UInt16(exactly: $0) }), v > 0 else {
            report(TopologyError(loc(n), "\(key) \(InvalidValue.quoted(s)) must be a port from 1 to 65535"))
            return nil
        }
        return v
    }

    mutating func address(_ m: Node.Mapping, _ key: String) -> IPAddress? {
        guard let n = m[key: key], let s = scalar(n, key) else { return nil }
        do { return try IPAddress(s) } catch {
            report(TopologyError(loc(n), "\(key): \(error)"))
            return nil
        }
    }

    mutating func prefix(_ m: Node.Mapping, _ key: String) -> IPPrefix? {
        guard let n = m[key: key], let s = scalar(n, key) else { return nil }
        do { return try IPPrefix(s) } catch {
            report(TopologyError(loc(n), "\(key): \(error)"))
            return nil
        }
    }

    mutating func prefixes(_ m: Node.Mapping, _ key: String) -> [IPPrefix] {
        guard let n = m[key: key] else { return [] }
        return sequence(n, key).compactMap { item in
            guard let s = scalar(item, key) else { return nil }
            do { return try IPPrefix(s) } catch {
                report(TopologyError(loc(item), "\(key): \(error)", hint: "write an address with its prefix, like 10.10.0.11/24"))
                return nil
            }
        }
    }
}

/// Levenshtein distance, for "did you mean".
func distance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    for i in 1...a.count {
        var cur = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        prev = cur
    }
    return prev[b.count]
}

extension Node.Mapping {
    /// The value of a plain key, compared as text. Yams' own `subscript(String)` compares nodes,
    /// which resolves both keys' implicit tags with regular expressions on every comparison: that
    /// was most of the time to read a large file.
    subscript(key key: String) -> Node? {
        // The last of duplicate keys wins, as in Yams. By index, from the end: iterating a
        // Yams mapping (`for (k, v) in self`) first copies all its pairs into a new array, and
        // a VNIC's reading asks for about twenty keys.
        for i in stride(from: endIndex - 1, through: startIndex, by: -1) {
            let pair = self[i]
            if pair.key.string == key { return pair.value }
        }
        return nil
    }
}
