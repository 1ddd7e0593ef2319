/// A 48-bit Ethernet address.
public struct MACAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// A MAC from its six bytes.
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        bytes = [b0, b1, b2, b3, b4, b5]
    }

    public init(bytes: [UInt8]) throws(InvalidValue) {
        guard bytes.count == 6 else { throw InvalidValue("a MAC address has 6 bytes, got \(bytes.count)") }
        self.bytes = bytes
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (or `-` separated): six groups of one or two hex digits, one
    /// kind of separator.
    public init(_ text: String) throws(InvalidValue) {
        let separator: Character = text.contains(":") ? ":" : "-"
        let parts = text.split(separator: separator, omittingEmptySubsequences: false)
        let bad = InvalidValue("\(InvalidValue.quoted(text)) is not a MAC address; write six hex bytes like 02:00:5e:10:00:01")
        guard parts.count == 6 else { throw bad }
        var out: [UInt8] = []
        for p in parts {
            guard (1...2).contains(p.utf8.count), p.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }),
                  let b = UInt8(p, radix: 16) else { throw bad }
            out.append(b)
        }
        bytes = out
    }

    /// The IPv6 link-local address the kernel derives from this MAC (`addrgenmode eui64`):
    /// fe80::/64 with the modified EUI-64 interface identifier (universal/local bit flipped,
    /// ff:fe in the middle).
    public var ipv6LinkLocal: IPPrefix {
        let b = bytes
        let address = IPAddress.v6([0xfe, 0x80, 0, 0, 0, 0, 0, 0, b[0] ^ 0x02, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]])
        return IPPrefix(address: address, validLength: 64)
    }

    /// Parses an address meant for one endpoint: multicast/broadcast and all-zero are refused.
    public static func unicast(_ text: String) throws(InvalidValue) -> MACAddress {
        let mac = try MACAddress(text)
        if mac.isMulticast {
            throw InvalidValue("MAC \(mac) is a multicast address (lowest bit of the first byte is set); a VNIC needs a unicast address such as 02:...")
        }
        if mac.bytes.allSatisfy({ $0 == 0 }) { throw InvalidValue("MAC 00:00:00:00:00:00 cannot be used for an endpoint") }
        return mac
    }

    public var isMulticast: Bool { bytes[0] & 0x01 != 0 }
    public var isLocallyAdministered: Bool { bytes[0] & 0x02 != 0 }

    public var description: String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }

    public init(from decoder: Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
