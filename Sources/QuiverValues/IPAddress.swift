import Glibc

/// An IPv4 or IPv6 address (bytes in network order).
public enum IPAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    case v4([UInt8])
    case v6([UInt8])

    public init(_ text: String) throws(InvalidValue) {
        var v4 = in_addr()
        var v6 = in6_addr()
        // inet_pton reads a C string: a NUL inside the text would end it early (`10.0.0.1\0x`).
        guard text.utf8.count <= 45, text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x3A) || $0 == 0x2E || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) else {
            throw InvalidValue("\(InvalidValue.quoted(text)) is not an IPv4 or IPv6 address")
        }
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(withUnsafeBytes(of: v4) { Array($0) })
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            self = .v6(withUnsafeBytes(of: v6) { Array($0) })
        } else {
            throw InvalidValue("\(InvalidValue.quoted(text)) is not an IPv4 or IPv6 address")
        }
    }

    /// An IPv4 address from its four bytes.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self = .v4([a, b, c, d])
    }

    /// This address alone: a /32 or /128 prefix.
    public var hostPrefix: IPPrefix { IPPrefix(address: self, validLength: bitWidth) }

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

extension IPAddress {
    /// `0.0.0.0` or `::`.
    public var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }
    /// `127.0.0.0/8` or `::1`.
    public var isLoopback: Bool {
        switch self {
        case .v4(let b): return b[0] == 127
        case .v6(let b): return b[0..<15].allSatisfy { $0 == 0 } && b[15] == 1
        }
    }
    /// `224.0.0.0/4` or `ff00::/8`.
    public var isMulticast: Bool {
        switch self {
        case .v4(let b): return b[0] & 0xF0 == 0xE0
        case .v6(let b): return b[0] == 0xFF
        }
    }
    /// `255.255.255.255`.
    public var isLimitedBroadcast: Bool { isV4 && bytes.allSatisfy { $0 == 0xFF } }
    /// `::ffff:0:0/96`: an IPv4 address written as IPv6, which no interface carries.
    public var isIPv4Mapped: Bool {
        guard case .v6(let b) = self else { return false }
        return b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xFF && b[11] == 0xFF
    }
    /// `::/96` but `::` and `::1`: the deprecated IPv4-compatible form (RFC 4291 §2.5.5.1).
    public var isIPv4Compatible: Bool {
        guard case .v6(let b) = self else { return false }
        return b[0..<12].allSatisfy { $0 == 0 } && !isUnspecified && !isLoopback
    }
    /// `169.254.0.0/16` or `fe80::/10`.
    public var isLinkLocal: Bool {
        switch self {
        case .v4(let b): return b[0] == 169 && b[1] == 254
        case .v6(let b): return b[0] == 0xFE && b[1] & 0xC0 == 0x80
        }
    }

    /// Why this address cannot be one a VNIC holds or routes through, or nil: unspecified,
    /// loopback, multicast, limited broadcast, IPv4-mapped and IPv4-compatible addresses.
    public var notForAnInterface: String? {
        if isUnspecified { return "is the unspecified address" }
        if isLoopback { return "is a loopback address" }
        if isMulticast { return "is a multicast address" }
        if isLimitedBroadcast { return "is the limited broadcast address" }
        if isIPv4Mapped { return "is an IPv4-mapped IPv6 address (write the IPv4 address itself)" }
        if isIPv4Compatible { return "is a deprecated IPv4-compatible IPv6 address" }
        return nil
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

    /// For lengths that are in range by construction.
    init(address: IPAddress, validLength: Int) {
        self.address = address
        length = validLength
    }

    public init(_ text: String) throws(InvalidValue) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw InvalidValue("\(InvalidValue.quoted(text)) is not an address or prefix like 10.0.0.1/24") }
        let address = try IPAddress(String(parts[0]))
        if parts.count == 2 {
            guard parts[1].utf8.count <= 3, let len = DecimalText.integer(parts[1]) else {
                throw InvalidValue("\(InvalidValue.quoted(text)): prefix length \(InvalidValue.quoted(parts[1])) is not a number")
            }
            try self.init(address: address, length: Int(len))
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
        // Same family and length as self.
        return IPPrefix(address: address.isV4 ? .v4(b) : .v6(b), validLength: length)
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
