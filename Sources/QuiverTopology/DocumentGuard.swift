import Foundation
import Yams

/// What stands between a hostile file and the YAML composer, which builds its tree recursively
/// (a few thousand levels of `[[[[` overflow the stack) and expands aliases (a few lines of
/// `&a [*b, *b, …]` stand for billions of nodes).
///
/// - Before composing, ``scan(_:file:)`` bounds the nesting from the text alone, over-estimating
///   on purpose: indentation, block indicators on a line and open brackets all count, quotes and
///   comments are not looked into (a quote inside a plain scalar would fool a lexer this small).
///   It also counts what could be anchors (`&name`): aliases can only refer to anchors, and few
///   anchors keep the composed tree shallow and small whatever the aliases do.
/// - After composing, ``check(_:file:)`` walks the tree once, without recursion: nesting deeper
///   than ``Limits/depth`` is an error where it happens, and so is any alias (a node met twice at
///   the same place in the file) — topology files spell every value out.
enum DocumentGuard {
    /// The scan's bound, far above any real file's, far below what the composer survives.
    static let scanDepth = 160
    /// At most this many `&name` in a file.
    static let anchors = 16

    static func scan(_ text: String, file: String) -> TopologyError? {
        var flow = 0
        var line = 1
        var anchors = 0
        var bytes = Array(text.utf8)
        bytes.append(0x0A)
        var i = 0
        while i < bytes.count {
            // One line: its indentation, its indicators, its brackets.
            var indent = 0
            while i < bytes.count, bytes[i] == 0x20 { indent += 1; i += 1 }
            var indicators = 0
            var col = indent + 1
            var prev: UInt8 = 0x20
            while i < bytes.count, bytes[i] != 0x0A {
                let b = bytes[i]
                let next = i + 1 < bytes.count ? bytes[i + 1] : 0x0A
                switch b {
                case 0x5B, 0x7B: flow += 1                        // [ {
                case 0x5D, 0x7D: flow = max(0, flow - 1)          // ] }
                case 0x2D, 0x3F, 0x3A:                            // - ? :
                    if next == 0x20 || next == 0x0A || next == 0x09 { indicators += 1 }
                case 0x26:                                        // &
                    if next != 0x20 && next != 0x0A && (prev == 0x20 || prev == 0x5B || prev == 0x7B || prev == 0x2C || prev == 0x3A || prev == 0x2D) {
                        anchors += 1
                        if anchors > DocumentGuard.anchors {
                            return TopologyError(SourceLocation(file: file, line: line, column: col),
                                                 "more than \(DocumentGuard.anchors) YAML anchors (&name)",
                                                 hint: "topology files do not use anchors and aliases; write each value out")
                        }
                    }
                default: break
                }
                if 2 * (indent + 1) + indicators + flow > scanDepth {
                    return TopologyError(SourceLocation(file: file, line: line, column: col),
                                         "the file nests too deeply here (more than \(Limits.depth) levels of collections)",
                                         hint: "a topology is a few levels deep: topology, tenants, hosts, vnics, flows")
                }
                prev = b
                i += 1
                col += 1
            }
            i += 1
            line += 1
        }
        return nil
    }

    /// Walks the composed tree (iteratively): an error at the first node nested deeper than
    /// ``Limits/depth``, or at the first alias.
    static func check(_ root: Node, file: String) -> TopologyError? {
        var stack: [(Node, Int)] = [(root, 1)]
        var seen = Set<Position>()
        while let (node, depth) = stack.popLast() {
            let at = SourceLocation(file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0)
            if depth > Limits.depth {
                return TopologyError(at, "the file nests deeper than \(Limits.depth) levels here",
                                     hint: "a topology is a few levels deep: topology, tenants, hosts, vnics, flows")
            }
            // Every collection and every non-empty scalar starts at its own place in the text (a
            // block mapping starts where its first key does, so the kind counts too); a second
            // node of one kind starting at the same place is an alias of the first.
            let kind: Int
            switch node {
            case .scalar(let s): kind = s.string.isEmpty ? -1 : 0
            case .mapping: kind = 1
            case .sequence: kind = 2
            }
            if kind >= 0, let m = node.mark, !seen.insert(Position(line: m.line, column: m.column, kind: kind)).inserted {
                return TopologyError(at, "a YAML alias (*name) repeats the value written here",
                                     hint: "topology files do not use anchors and aliases; write each value out")
            }
            switch node {
            case .mapping(let m): for (k, v) in m.reversed() { stack.append((v, depth + 1)); stack.append((k, depth + 1)) }
            case .sequence(let s): for v in s.reversed() { stack.append((v, depth + 1)) }
            default: break
            }
        }
        return nil
    }

    struct Position: Hashable {
        var line: Int
        var column: Int
        var kind: Int
    }
}
