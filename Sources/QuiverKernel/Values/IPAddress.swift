import Glibc

/// An IPv4 or IPv6 address (bytes in network order).
public enum IPAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    case v4([UInt8])
    case v6([UInt8])

    public init(_ text: String) throws(InvalidValue) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(withUnsafeBytes(of: v4) { Array($0) })
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: v6) { Array($0) })
        } else {
            throw InvalidValue("\"\(text)\" is not an IPv4 or IPv6 address")
        }
    }

    public init(bytes: [UInt8]) throws(InvalidValue) {
        switch bytes.count {
        case 4: self = .v4(bytes)
        case 16: self = .v6(bytes)
        default: throw InvalidValue("an IP address has 4 or 16 bytes, got \(bytes.count)")
        }
    }

    public var bytes: [UInt8] {
        switch self { case .v4(let b), .v6(let b): return b }
    }

    public var family: Int32 {
        switch self { case .v4: return AF_INET; case .v6: return AF_INET6 }
    }

    public var isV4: Bool { if case .v4 = self { return true } else { return false } }
    public var bitWidth: Int { bytes.count * 8 }

    public var description: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let b = bytes
        b.withUnsafeBytes { _ = inet_ntop(family, $0.baseAddress, &buf, socklen_t(buf.count)) }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public init(from decoder: Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// An address with a prefix length, `10.0.0.1/24` or `fd00::1/64`. A bare address is a host
/// prefix (/32 or /128).
public struct IPPrefix: Sendable, Hashable, Codable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    public init(address: IPAddress, length: Int) throws(InvalidValue) {
        guard (0...address.bitWidth).contains(length) else {
            throw InvalidValue("prefix length /\(length) is out of range for \(address) (0–\(address.bitWidth))")
        }
        self.address = address
        self.length = length
    }

    public init(_ text: String) throws(InvalidValue) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw InvalidValue("\"\(text)\" is not an address or prefix like 10.0.0.1/24") }
        let address = try IPAddress(String(parts[0]))
        if parts.count == 2 {
            guard let len = Int(parts[1]) else {
                throw InvalidValue("\"\(text)\": prefix length \"\(parts[1])\" is not a number")
            }
            try self.init(address: address, length: len)
        } else {
            try self.init(address: address, length: address.bitWidth)
        }
    }

    /// The prefix with host bits cleared (`10.0.0.0/24`).
    public var network: IPPrefix {
        var b = address.bytes
        for i in 0..<b.count {
            let bitsHere = max(0, min(8, length - i * 8))
            b[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
        }
        // Same family and length as self, so this cannot fail.
        return try! IPPrefix(address: IPAddress(bytes: b), length: length)
    }

    /// True when `other` lies inside this prefix (same family).
    public func contains(_ other: IPAddress) -> Bool {
        guard other.family == address.family else { return false }
        return (try? IPPrefix(address: other, length: length))?.network == network
    }

    public var description: String { "\(address)/\(length)" }

    public init(from decoder: Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
