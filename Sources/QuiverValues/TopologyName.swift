/// A topology's name: 1 to 8 ASCII letters, digits or `_`. It prefixes every kernel name the
/// topology makes (`lab-web-net0`) and names its state under `/run/quiver` — so it can never hold
/// `/`, `.`, `-` or anything a path or a kernel name would read differently.
public struct TopologyName: Sendable, Hashable, Comparable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public static let maxBytes = 8
    public let rawValue: String

    /// `cap`: `quiver cap` tags its own IFBs `quiver:cap/DEV`, so a topology of that name would
    /// share their tag prefix.
    public static let reserved: Set<String> = ["cap"]

    public init(validating name: String) throws(InvalidValue) {
        try ObjectName.check(name, "topology", maxBytes: TopologyName.maxBytes)
        if TopologyName.reserved.contains(name) {
            throw InvalidValue("topology name \(InvalidValue.quoted(name)) is reserved (`quiver cap` tags its devices quiver:\(name)/...); choose another")
        }
        rawValue = name
    }

    /// For literals in code and tests; an invalid literal is a programming error.
    public init(stringLiteral value: String) {
        do { try self.init(validating: value) } catch { fatalError("invalid topology name literal: \(error)") }
    }

    public init(from decoder: Decoder) throws { try self.init(validating: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    public var description: String { rawValue }
    public static func < (a: TopologyName, b: TopologyName) -> Bool { a.rawValue < b.rawValue }
}

/// The name of a switch, tenant, host or VNIC in a topology file: ASCII letters, digits and `_`
/// (no `-`, which joins names in kernel names, so joined names cannot collide).
public struct ObjectName: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Longer names cannot fit any kernel name they are part of.
    public static let maxBytes = 15
    public let rawValue: String

    public init(validating name: String, _ what: String = "a") throws(InvalidValue) {
        try ObjectName.check(name, what, maxBytes: ObjectName.maxBytes)
        rawValue = name
    }

    public var description: String { rawValue }
    public static func < (a: ObjectName, b: ObjectName) -> Bool { a.rawValue < b.rawValue }

    /// Letters, digits and `_`, 1 to `maxBytes` bytes; the error says which rule failed.
    public static func check(_ name: String, _ what: String, maxBytes: Int) throws(InvalidValue) {
        var shown: String { InvalidValue.quoted(name) }
        if name.isEmpty { throw InvalidValue("\(what) name is empty") }
        if !name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x5F }) {
            throw InvalidValue("\(what) name \(shown) may use only letters, digits and _ (`-` joins names in kernel names; `/` and `.` would make a path)")
        }
        if name.utf8.count > maxBytes { throw InvalidValue("\(what) name \(shown) is longer than \(maxBytes) bytes (kernel names are built from it)") }
    }
}
