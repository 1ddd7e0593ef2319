import CNetlink
import QuiverNetlink

/// An address on a link, as the kernel reports it (`RTM_NEWADDR`).
public struct Address: Sendable, Equatable, Codable {
    public var linkIndex: Int32
    public var prefix: IPPrefix
    public var label: String?
    public var scope: UInt8
    /// `IFA_F_*` flags (from `IFA_FLAGS` where the kernel sends it: all 32 bits).
    public var flags: UInt32 = 0

    /// Duplicate address detection is still running (IPv6).
    public var isTentative: Bool { flags & UInt32(IFA_F_TENTATIVE) != 0 }
    /// Duplicate address detection found another node with this address (IPv6).
    public var isDuplicate: Bool { flags & UInt32(IFA_F_DADFAILED) != 0 }

    enum CodingKeys: String, CodingKey { case linkIndex, prefix, label, scope }

    /// An IPv6 link-local address (fe80::/10, link scope), such as the one the kernel gives a
    /// link when it comes up.
    public var isIPv6LinkLocal: Bool { !prefix.address.isV4 && scope == UInt8(RT_SCOPE_LINK.rawValue) }

    /// An address value not read from the kernel (for plans and their tests).
    public init(prefix: IPPrefix, linkIndex: Int32, scope: UInt8 = 0, label: String? = nil) {
        self.prefix = prefix
        self.linkIndex = linkIndex
        self.scope = scope
        self.label = label
    }

    public init(decoding message: ReceivedMessage) throws {
        let h = try message.header(as: ifaddrmsg.self)
        let a = message.attributes(after: ifaddrmsg.self)
        linkIndex = Int32(bitPattern: h.ifa_index)
        scope = h.ifa_scope
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS differs only on point-to-point.
        guard let bytes = a.payload(IFA_LOCAL) ?? a.payload(IFA_ADDRESS) else {
            throw NetlinkProtocolError("RTM_NEWADDR without an address")
        }
        prefix = try IPPrefix(address: IPAddress(bytes: bytes), length: Int(h.ifa_prefixlen))
        label = a.string(IFA_LABEL)
        flags = a.payload(IFA_FLAGS).flatMap { $0.count == 4 ? $0.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } : nil } ?? UInt32(h.ifa_flags)
    }
}

public enum AddressRequest {
    static func message(_ type: Int, _ flags: Int32, _ prefix: IPPrefix, linkIndex: Int32) -> NetlinkMessage {
        var m = NetlinkMessage(type: type, flags: flags)
        var h = ifaddrmsg()
        h.ifa_family = UInt8(prefix.address.family)
        h.ifa_prefixlen = UInt8(prefix.length)
        h.ifa_index = UInt32(bitPattern: linkIndex)
        h.ifa_scope = UInt8(RT_SCOPE_UNIVERSE.rawValue)
        m.append(header: h)
        m.put(IFA_LOCAL, bytes: prefix.address.bytes)
        m.put(IFA_ADDRESS, bytes: prefix.address.bytes)
        return m
    }

    /// `ip addr add PREFIX dev LINK` (`replace` gives `ip addr replace`). IPv6 addresses are added
    /// with `IFA_F_NODAD`, so they are usable at once (Quiver checks uniqueness itself), unless
    /// `duplicateAddressDetection` asks the kernel to run it (`ip addr add` without `nodad`).
    public static func add(_ prefix: IPPrefix, linkIndex: Int32, linkName: String, replace: Bool = false,
                           duplicateAddressDetection: Bool = false) -> NetlinkRequest {
        var m = message(RTM_NEWADDR, replace ? NLM_F_CREATE | NLM_F_REPLACE : NLM_F_CREATE | NLM_F_EXCL, prefix, linkIndex: linkIndex)
        if !prefix.address.isV4 && !duplicateAddressDetection { m.put(IFA_FLAGS, u32: UInt32(IFA_F_NODAD)) }
        return NetlinkRequest(m, RequestContext("add address \(prefix) to link", linkName))
    }

    /// `ip addr del PREFIX dev LINK`.
    public static func delete(_ prefix: IPPrefix, linkIndex: Int32, linkName: String) -> NetlinkRequest {
        NetlinkRequest(message(RTM_DELADDR, 0, prefix, linkIndex: linkIndex),
                       RequestContext("delete address \(prefix) from link", linkName))
    }

    /// `ip addr show` (`-4`/`-6` with a family).
    public static func dump(family: Int32 = AF_UNSPEC) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETADDR, flags: NLM_F_DUMP)
        var h = ifaddrmsg()
        h.ifa_family = UInt8(family)
        m.append(header: h)
        return NetlinkRequest(m, RequestContext("list addresses"))
    }
}

extension NetlinkHandle {
    /// Equivalent to `ip addr add PREFIX dev LINK nodad` (without `nodad` when
    /// `duplicateAddressDetection`).
    public func addAddress(_ prefix: IPPrefix, to link: InterfaceName, duplicateAddressDetection: Bool = false) throws {
        let index = try self.link(named: link).index
        do {
            try perform(AddressRequest.add(prefix, linkIndex: index, linkName: link.rawValue, duplicateAddressDetection: duplicateAddressDetection))
        } catch var e as NetlinkError {
            if e.errno == .fileExists { e.hint = "address \(prefix) is already on \(link)" }
            throw e
        }
    }

    /// Equivalent to `ip addr del PREFIX dev LINK`.
    public func deleteAddress(_ prefix: IPPrefix, from link: InterfaceName) throws {
        let index = try self.link(named: link).index
        do { try perform(AddressRequest.delete(prefix, linkIndex: index, linkName: link.rawValue)) } catch var e as NetlinkError {
            if e.errno == .addressNotAvailable { e.hint = "\(link) has no address \(prefix)" }
            throw e
        }
    }

    /// Every address in the namespace. Equivalent to `ip addr show`. One dump per family: the
    /// kernel serves those without the RTNL lock, a dump of both families holds it throughout
    /// (and hosts are read from several threads at once).
    public func addresses() throws -> [Address] {
        try [AF_INET, AF_INET6].flatMap { family in
            let r = AddressRequest.dump(family: family)
            return try socket.dump(r.message, r.context).filter { $0.type == UInt16(RTM_NEWADDR) }.map(Address.init(decoding:))
        }
    }

    /// Addresses of one link.
    public func addresses(of link: InterfaceName) throws -> [Address] {
        let index = try self.link(named: link).index
        return try addresses().filter { $0.linkIndex == index }
    }
}
