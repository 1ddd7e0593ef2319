import CNetlink
import QuiverNetlink

/// One 32-bit compare of a u32 selector: `(word at off) & mask == value`, offsets relative to the
/// network header (negative offsets reach into the Ethernet header). Mask and value are in
/// network byte order as written here (`0xffff0000` = first two bytes).
public struct U32Key: Sendable, Equatable {
    public var mask: UInt32
    public var value: UInt32
    public var offset: Int32

    public init(mask: UInt32, value: UInt32, offset: Int32) {
        self.mask = mask
        self.value = value & mask
        self.offset = offset
    }

    /// Matches every packet (`match u32 0 0`).
    public static let all = [U32Key(mask: 0, value: 0, offset: 0)]

    private static func word(_ b: [UInt8], _ i: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { acc, k in (acc << 8) | UInt32(i + k < b.count ? b[i + k] : 0) }
    }

    /// `match ether src MAC`: bytes -8…-3, a full word then the first half of the next.
    public static func etherSource(_ m: MACAddress) -> [U32Key] {
        [U32Key(mask: 0xFFFF_FFFF, value: word(m.bytes, 0), offset: -8),
         U32Key(mask: 0xFFFF_0000, value: word(m.bytes, 4), offset: -4)]
    }

    /// `match ether dst MAC`: bytes -14…-9, kept on 4-byte aligned offsets as tc does: the second
    /// half of the word at -16, then the word at -12.
    public static func etherDestination(_ m: MACAddress) -> [U32Key] {
        [U32Key(mask: 0x0000_FFFF, value: word([0, 0] + m.bytes, 0), offset: -16),
         U32Key(mask: 0xFFFF_FFFF, value: word(m.bytes, 2), offset: -12)]
    }

    private static func prefix(_ p: IPPrefix, at offset: Int32) -> [U32Key] {
        let bytes = p.address.bytes
        var keys: [U32Key] = []
        var remaining = p.length
        var i = 0
        while remaining > 0 {
            let bits = min(32, remaining)
            let mask: UInt32 = bits == 32 ? 0xFFFF_FFFF : ~(0xFFFF_FFFF >> UInt32(bits))
            keys.append(U32Key(mask: mask, value: word(bytes, i), offset: offset + Int32(i)))
            remaining -= bits
            i += 4
        }
        return keys
    }

    /// IPv4 header with no options (version 4, IHL 5): the fixed offsets below assume it, like tc's
    /// `match ip sport/dport`. Packets with IP options do not match.
    public static let ipv4NoOptions = U32Key(mask: 0xFF00_0000, value: 0x4500_0000, offset: 0)

    /// IPv4 total length below 256 bytes (the high byte of the length field is zero). A TSO
    /// super-packet carries its full length here (BIG TCP's 0 would match too; it is off by default).
    public static let ipv4ShortPacket = U32Key(mask: 0x0000_FF00, value: 0, offset: 0)
    /// IPv6 payload length below 256 bytes.
    public static let ipv6ShortPacket = U32Key(mask: 0xFF00_0000, value: 0, offset: 4)

    public static func ipv4Source(_ p: IPPrefix) -> [U32Key] { prefix(p, at: 12) }
    public static func ipv4Destination(_ p: IPPrefix) -> [U32Key] { prefix(p, at: 16) }
    /// The protocol is the second byte of the word at 8 (TTL, protocol, checksum).
    public static func ipv4Protocol(_ proto: UInt8) -> U32Key { U32Key(mask: 0x00FF_0000, value: UInt32(proto) << 16, offset: 8) }
    public static func ipv4SourcePort(_ port: UInt16) -> U32Key { U32Key(mask: 0xFFFF_0000, value: UInt32(port) << 16, offset: 20) }
    public static func ipv4DestinationPort(_ port: UInt16) -> U32Key { U32Key(mask: 0x0000_FFFF, value: UInt32(port), offset: 20) }

    /// IPv6 without extension headers before the transport header.
    public static func ipv6Source(_ p: IPPrefix) -> [U32Key] { prefix(p, at: 8) }
    public static func ipv6Destination(_ p: IPPrefix) -> [U32Key] { prefix(p, at: 24) }
    public static func ipv6NextHeader(_ proto: UInt8) -> U32Key { U32Key(mask: 0x0000_FF00, value: UInt32(proto) << 8, offset: 4) }
    public static func ipv6SourcePort(_ port: UInt16) -> U32Key { U32Key(mask: 0xFFFF_0000, value: UInt32(port) << 16, offset: 40) }
    public static func ipv6DestinationPort(_ port: UInt16) -> U32Key { U32Key(mask: 0x0000_FFFF, value: UInt32(port), offset: 40) }
}

/// An action attached to a filter. This kernel has `mirred` (no gact, police or skbedit).
public enum TCAction: Sendable, Equatable {
    /// `action mirred egress redirect dev IFINDEX`: the packet leaves through that device
    /// (an IFB, to be shaped there) and is not processed further here.
    case redirect(toIndex: Int32)

    func encode(into m: inout NetlinkMessage, order: Int) {
        switch self {
        case .redirect(let index):
            m.nest(order) { a in
                a.put(TCA_ACT_KIND, string: "mirred")
                a.nest(TCA_ACT_OPTIONS) { o in
                    var p = tc_mirred()
                    p.action = TC_ACT_STOLEN
                    p.eaction = TCA_EGRESS_REDIR
                    p.ifindex = UInt32(bitPattern: index)
                    o.put(TCA_MIRRED_PARMS, value: p)
                }
            }
        }
    }

    static func decode(_ list: NetlinkAttributes) -> [TCAction] {
        list.entries.compactMap { entry in
            let a = list.nested(in: entry.range)
            guard a.string(TCA_ACT_KIND) == "mirred",
                  let p = a.nested(TCA_ACT_OPTIONS)?.value(TCA_MIRRED_PARMS, as: tc_mirred.self) else { return nil }
            return .redirect(toIndex: Int32(bitPattern: p.ifindex))
        }
    }
}

/// A u32 filter: keys, an optional class to put matching packets in, actions.
/// Equivalent to `tc filter add dev DEV parent P prio N protocol PROTO u32 match ... [flowid C]
/// [action mirred egress redirect dev IFB]`.
public struct U32Filter: Sendable, Equatable {
    public var keys: [U32Key]
    public var classID: TCHandle?
    public var actions: [TCAction]

    public init(keys: [U32Key], classID: TCHandle? = nil, actions: [TCAction] = []) {
        self.keys = keys
        self.classID = classID
        self.actions = actions
    }

    func encodeOptions(into m: inout NetlinkMessage) {
        m.nest(TCA_OPTIONS) { o in
            var sel = tc_u32_sel()
            sel.flags = UInt8(TC_U32_TERMINAL)
            sel.nkeys = UInt8(keys.count)
            var bytes = withUnsafeBytes(of: sel) { Array($0) }
            for k in keys {
                var key = tc_u32_key()
                key.mask = k.mask.bigEndian
                key.val = k.value.bigEndian
                key.off = k.offset
                bytes += withUnsafeBytes(of: key) { Array($0) }
            }
            o.put(TCA_U32_SEL, bytes: bytes)
            if let classID { o.put(TCA_U32_CLASSID, u32: classID.rawValue) }
            if !actions.isEmpty {
                o.nest(TCA_U32_ACT) { list in
                    for (i, a) in actions.enumerated() { a.encode(into: &list, order: i + 1) }
                }
            }
        }
    }
}

/// A filter as the kernel reports it (u32 key nodes are decoded; hash-table nodes have no keys).
public struct Filter: Sendable, Equatable {
    public var ifindex: Int32
    public var parent: TCHandle
    public var handle: UInt32
    public var priority: UInt16
    public var protocolNumber: UInt16
    public var kind: String
    public var u32: U32Filter?

    public init(decoding message: ReceivedMessage) throws {
        let h = try message.header(as: tcmsg.self)
        let a = message.attributes(after: tcmsg.self)
        ifindex = h.tcm_ifindex
        parent = TCHandle(rawValue: h.tcm_parent)
        handle = h.tcm_handle
        priority = UInt16(h.tcm_info >> 16)
        protocolNumber = UInt16(bigEndian: UInt16(h.tcm_info & 0xFFFF))
        kind = a.string(TCA_KIND) ?? ""
        if kind == "u32", let o = a.nested(TCA_OPTIONS), let selRange = o.range(TCA_U32_SEL) {
            let selSize = MemoryLayout<tc_u32_sel>.size
            let keySize = MemoryLayout<tc_u32_key>.size
            let raw = Array(o.bytes[selRange])
            var keys: [U32Key] = []
            if raw.count >= selSize {
                let n = Int(raw.withUnsafeBytes { $0.loadUnaligned(as: tc_u32_sel.self) }.nkeys)
                for i in 0..<n where selSize + (i + 1) * keySize <= raw.count {
                    let k = raw.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: selSize + i * keySize, as: tc_u32_key.self) }
                    keys.append(U32Key(mask: UInt32(bigEndian: k.mask), value: UInt32(bigEndian: k.val), offset: k.off))
                }
            }
            u32 = U32Filter(keys: keys, classID: o.u32(TCA_U32_CLASSID).map(TCHandle.init(rawValue:)),
                            actions: o.nested(TCA_U32_ACT).map(TCAction.decode) ?? [])
        }
    }
}

/// Where a filter lives: a device's qdisc/class (`dev DEV parent P`) or a shared block
/// (`block N`, addressed with `TCM_IFINDEX_MAGIC_BLOCK`).
public enum FilterTarget: Sendable, Equatable {
    case device(ifindex: Int32, name: String, parent: TCHandle)
    case block(UInt32)

    var ifindex: Int32 {
        switch self {
        case .device(let i, _, _): return i
        case .block: return Int32(bitPattern: TCM_IFINDEX_MAGIC_BLOCK)
        }
    }

    var parent: TCHandle {
        switch self {
        case .device(_, _, let p): return p
        case .block(let b): return TCHandle(rawValue: b)
        }
    }

    var name: String {
        switch self {
        case .device(_, let n, let p): return "\(p) on \(n)"
        case .block(let b): return "block \(b)"
        }
    }
}

public enum FilterRequest {
    /// `tc filter add {dev DEV parent P | block N} prio N protocol PROTO u32 ...`.
    public static func addU32(_ target: FilterTarget, priority: UInt16, protocolNumber: UInt16, filter: U32Filter) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_NEWTFILTER, flags: NLM_F_CREATE | NLM_F_EXCL)
        m.append(header: tcHeader(ifindex: target.ifindex, handle: .unspecified, parent: target.parent,
                                  info: info(priority: priority, protocolNumber: protocolNumber)))
        m.put(TCA_KIND, string: "u32")
        filter.encodeOptions(into: &m)
        return NetlinkRequest(m, RequestContext("add u32 filter prio \(priority) at", target.name))
    }

    /// `tc filter del {dev DEV parent P | block N} prio N`.
    public static func delete(_ target: FilterTarget, priority: UInt16) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_DELTFILTER, flags: 0)
        m.append(header: tcHeader(ifindex: target.ifindex, handle: .unspecified, parent: target.parent,
                                  info: info(priority: priority, protocolNumber: 0)))
        return NetlinkRequest(m, RequestContext("delete filters prio \(priority) at", target.name))
    }

    /// `tc filter show {dev DEV parent P | block N}`.
    public static func dump(_ target: FilterTarget) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETTFILTER, flags: NLM_F_DUMP)
        m.append(header: tcHeader(ifindex: target.ifindex, handle: .unspecified, parent: target.parent))
        return NetlinkRequest(m, RequestContext("list filters at", target.name))
    }

    static func info(priority: UInt16, protocolNumber: UInt16) -> UInt32 {
        quiver_tc_h_make(UInt32(priority), UInt32(protocolNumber.bigEndian))
    }

    /// `tc filter add dev DEV parent P prio N protocol PROTO u32 ...`.
    public static func addU32(ifindex: Int32, device: String, parent: TCHandle, priority: UInt16,
                              protocolNumber: UInt16, filter: U32Filter) -> NetlinkRequest {
        addU32(.device(ifindex: ifindex, name: device, parent: parent), priority: priority, protocolNumber: protocolNumber, filter: filter)
    }

    /// `tc filter del dev DEV parent P prio N`: every filter of that priority.
    public static func delete(ifindex: Int32, device: String, parent: TCHandle, priority: UInt16) -> NetlinkRequest {
        delete(.device(ifindex: ifindex, name: device, parent: parent), priority: priority)
    }
}

extension NetlinkHandle {
    /// Filters of a device's parent or of a shared block.
    public func filters(_ target: FilterTarget) throws -> [Filter] {
        let r = FilterRequest.dump(target)
        return try socket.dump(r.message, r.context)
            .filter { $0.type == UInt16(RTM_NEWTFILTER) }
            .map(Filter.init(decoding:))
    }

    /// Filters of a device under one parent. Equivalent to `tc filter show dev DEV parent P`.
    public func filters(ifindex: Int32, parent: TCHandle) throws -> [Filter] {
        try filters(.device(ifindex: ifindex, name: "#\(ifindex)", parent: parent))
    }
}
