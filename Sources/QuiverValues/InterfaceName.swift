/// A Linux interface name: 1 to 15 bytes (IFNAMSIZ - 1), no `/`, `:`, `%`, whitespace or control
/// characters, not `.`, `..`, `all` or `default`.
public struct InterfaceName: Sendable, Hashable, Comparable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public static let maxBytes = 15
    public let rawValue: String

    /// Names the kernel refuses for a new link (`dev_valid_name`, and the `all`/`default` entries
    /// of `/proc/sys/net/*/conf`).
    public static let reserved: Set<String> = [".", "..", "all", "default"]

    /// Validates a name from user input.
    public init(validating name: String) throws(InvalidValue) {
        let bytes = name.utf8.count
        var shown: String { InvalidValue.quoted(name) }
        if bytes == 0 { throw InvalidValue("interface name is empty") }
        if bytes > InterfaceName.maxBytes {
            throw InvalidValue("interface name \(shown) is \(bytes) bytes; Linux allows at most \(InterfaceName.maxBytes) — use a shorter name")
        }
        if InterfaceName.reserved.contains(name) { throw InvalidValue("interface name \(shown) is reserved by the kernel") }
        // The names Quiver makes (letters, digits, `-`, `_`, `.`) need no look at Unicode properties.
        if name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }) {
            rawValue = name
            return
        }
        if let bad = name.unicodeScalars.first(where: { $0 == "/" || $0 == ":" || $0 == "%" || $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            let what = bad.properties.isWhitespace ? "whitespace" : bad.value < 0x20 || bad.value == 0x7F ? "a control character" : "'\(bad)'"
            throw InvalidValue("interface name \(shown) contains \(what); names may not contain '/', ':', '%' (the kernel reads it as a number template), whitespace or control characters")
        }
        rawValue = name
    }

    /// For literals in code and tests; an invalid literal is a programming error.
    public init(stringLiteral value: String) {
        do { try self.init(validating: value) } catch { fatalError("invalid interface name literal: \(error)") }
    }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        try self.init(validating: s)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    public var description: String { rawValue }
    public static func < (a: InterfaceName, b: InterfaceName) -> Bool { a.rawValue < b.rawValue }
}
