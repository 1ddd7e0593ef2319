import QuiverNetlink

/// The name of a named network namespace (a file under `/var/run/netns`, as `ip netns` keeps
/// them), as a user gives it in `--netns` and `--fabric-netns`: 1 to 64 ASCII letters, digits,
/// `_`, `-` or `.`, not starting with `.` or `-`. Never a path: `/` and `..` cannot occur.
public struct NamespaceName: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    public static let maxBytes = 64
    public let rawValue: String

    public init(validating name: String) throws(InvalidValue) {
        var shown: String { InvalidValue.quoted(name) }
        guard !name.isEmpty else { throw InvalidValue("network namespace name is empty") }
        guard name.utf8.count <= NamespaceName.maxBytes else {
            throw InvalidValue("network namespace name \(shown) is longer than \(NamespaceName.maxBytes) bytes")
        }
        guard name.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2E }),
              let first = name.utf8.first, first != 0x2E, first != 0x2D else {
            throw InvalidValue("network namespace name \(shown) may use only letters, digits, _, - and . (not first); it is a name, not a path")
        }
        rawValue = name
    }

    /// For literals in code and tests; an invalid literal is a programming error.
    public init(stringLiteral value: String) {
        do { try self.init(validating: value) } catch { fatalError("invalid network namespace name literal: \(error)") }
    }

    public var description: String { rawValue }
    public static func < (a: NamespaceName, b: NamespaceName) -> Bool { a.rawValue < b.rawValue }

    /// The namespace of this name.
    public var namespace: NetworkNamespace { NetworkNamespace.named(rawValue) }
}
