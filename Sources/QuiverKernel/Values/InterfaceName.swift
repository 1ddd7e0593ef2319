/// An error in a value a user gave (a name, an address, a rate): says what is wrong and what to do.
public struct InvalidValue: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A Linux interface name: 1 to 15 bytes (IFNAMSIZ - 1), no `/`, `:` or whitespace, not `.`/`..`.
public struct InterfaceName: Sendable, Hashable, Comparable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public static let maxBytes = 15
    public let rawValue: String

    /// Validates a name from user input.
    public init(validating name: String) throws(InvalidValue) {
        let bytes = name.utf8.count
        if bytes == 0 { throw InvalidValue("interface name is empty") }
        if bytes > InterfaceName.maxBytes {
            throw InvalidValue("interface name \"\(name)\" is \(bytes) bytes; Linux allows at most \(InterfaceName.maxBytes) — use a shorter name")
        }
        if name == "." || name == ".." { throw InvalidValue("interface name \"\(name)\" is reserved") }
        if let bad = name.unicodeScalars.first(where: { $0 == "/" || $0 == ":" || $0.properties.isWhitespace || $0.value < 0x20 }) {
            let shown = bad.properties.isWhitespace ? "whitespace" : "\"\(bad)\""
            throw InvalidValue("interface name \"\(name)\" contains \(shown); names may not contain '/', ':' or whitespace")
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
