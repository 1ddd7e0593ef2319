import CNetlink
import QuiverNetlink

/// What a rule (or a verdict map element) decides.
public enum NFTVerdict: Sendable, Equatable, Hashable {
    case accept
    case drop
    /// Run the chain, then come back.
    case jump(String)
    /// Run the chain instead of the rest of this one.
    case goto(String)
    case `return`

    var code: Int32 {
        switch self {
        case .accept: return Int32(NF_ACCEPT)
        case .drop: return Int32(NF_DROP)
        case .jump: return NFT_JUMP.rawValue
        case .goto: return NFT_GOTO.rawValue
        case .return: return NFT_RETURN.rawValue
        }
    }

    var chain: String? {
        switch self { case .jump(let c), .goto(let c): return c; default: return nil }
    }

    /// `NFTA_DATA_VERDICT { NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN }` inside an `nft_data` nest.
    func encode(into m: inout NetlinkMessage) {
        m.nest(NFTA_DATA_VERDICT.rawValue) { v in
            v.put(NFTA_VERDICT_CODE.rawValue, be32: UInt32(bitPattern: code))
            if let c = chain { v.put(NFTA_VERDICT_CHAIN.rawValue, string: c) }
        }
    }
}

/// Where a `payload` expression reads from.
public enum NFTPayloadBase: UInt32, Sendable {
    case link = 0      // NFT_PAYLOAD_LL_HEADER
    case network = 1   // NFT_PAYLOAD_NETWORK_HEADER
    case transport = 2 // NFT_PAYLOAD_TRANSPORT_HEADER
}

/// The `meta` keys Quiver reads.
public enum NFTMetaKey: Sendable {
    case inputInterfaceName
    case outputInterfaceName
    case protocolType
    /// The packet mark (`meta mark`): host byte order.
    case mark
    /// The transport protocol after any IPv6 extension headers (`meta l4proto`): 58 is ICMPv6.
    case l4proto
    /// The packet's family in an `inet` table (`meta nfproto`): 2 IPv4, 10 IPv6.
    case nfproto

    var raw: UInt32 {
        switch self {
        case .inputInterfaceName: return NFT_META_IIFNAME.rawValue
        case .outputInterfaceName: return NFT_META_OIFNAME.rawValue
        case .protocolType: return NFT_META_PROTOCOL.rawValue
        case .mark: return NFT_META_MARK.rawValue
        case .l4proto: return NFT_META_L4PROTO.rawValue
        case .nfproto: return NFT_META_NFPROTO.rawValue
        }
    }
}

/// One expression of a rule. All of them work on register 1 (16 bytes), which is all Quiver's
/// rules need; verdicts go to the verdict register.
public enum NFTExpression: Sendable, Equatable {
    /// `meta load KEY => reg 1`
    case meta(NFTMetaKey)
    /// `payload load LEN @ BASE + OFFSET => reg 1`
    case payload(NFTPayloadBase, offset: UInt32, length: UInt32)
    /// The same into 16-byte register `register` (2–4) — the second part of a concatenated key
    /// (`iifname . ether saddr`) behind a 16-byte first part in register 1, as `nft` loads it.
    case payloadInto(register: UInt32, NFTPayloadBase, offset: UInt32, length: UInt32)
    /// `cmp eq|neq reg 1 DATA`
    case compare(equal: Bool, [UInt8])
    /// `cmp lt|lte|gt|gte reg 1 DATA`: the register and DATA compared as big-endian numbers.
    case order(NFTOrder, [UInt8])
    /// `bitwise reg 1 = (reg 1 & MASK) ^ 0`
    case mask([UInt8])
    /// `lookup reg 1 set NAME` (a map's verdict goes to the verdict register); `inverted`: match
    /// when the key is *not* in the set.
    case lookup(set: String, map: Bool, inverted: Bool)
    /// `objref type counter name NAME`: add the packet to a named counter.
    case counter(named: String)
    /// `immediate reg 0 VERDICT`
    case verdict(NFTVerdict)
    /// `immediate reg 1 DATA`
    case load([UInt8])
    /// `meta set KEY with reg 1`
    case setMeta(NFTMetaKey)

    /// A `meta mark` value as the kernel keeps it in a register (host byte order).
    public static func markBytes(_ mark: UInt32) -> [UInt8] { withUnsafeBytes(of: mark) { Array($0) } }

    public static func interfaceName(_ name: String) -> [UInt8] {
        var b = Array(name.utf8.prefix(15))
        b += [UInt8](repeating: 0, count: 16 - b.count)
        return b
    }

    var kernelName: String {
        switch self {
        case .meta, .setMeta: return "meta"
        case .payload, .payloadInto: return "payload"
        case .compare, .order: return "cmp"
        case .mask: return "bitwise"
        case .lookup: return "lookup"
        case .counter: return "objref"
        case .verdict, .load: return "immediate"
        }
    }

    /// The `NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }` of this expression.
    func encode(into m: inout NetlinkMessage) {
        let reg1 = UInt32(NFT_REG_1.rawValue)
        m.nest(NFTA_LIST_ELEM.rawValue) { e in
            e.put(NFTA_EXPR_NAME.rawValue, string: kernelName)
            e.nest(NFTA_EXPR_DATA.rawValue) { d in
                switch self {
                case .meta(let key):
                    d.put(NFTA_META_DREG.rawValue, be32: reg1)
                    d.put(NFTA_META_KEY.rawValue, be32: key.raw)
                case .payloadInto(let r, let base, let offset, let length):
                    d.put(NFTA_PAYLOAD_DREG.rawValue, be32: UInt32(NFT_REG_1.rawValue) + r - 1)
                    d.put(NFTA_PAYLOAD_BASE.rawValue, be32: base.rawValue)
                    d.put(NFTA_PAYLOAD_OFFSET.rawValue, be32: offset)
                    d.put(NFTA_PAYLOAD_LEN.rawValue, be32: length)
                case .payload(let base, let offset, let length):
                    d.put(NFTA_PAYLOAD_DREG.rawValue, be32: reg1)
                    d.put(NFTA_PAYLOAD_BASE.rawValue, be32: base.rawValue)
                    d.put(NFTA_PAYLOAD_OFFSET.rawValue, be32: offset)
                    d.put(NFTA_PAYLOAD_LEN.rawValue, be32: length)
                case .compare(let equal, let data):
                    d.put(NFTA_CMP_SREG.rawValue, be32: reg1)
                    d.put(NFTA_CMP_OP.rawValue, be32: equal ? NFT_CMP_EQ.rawValue : NFT_CMP_NEQ.rawValue)
                    d.nest(NFTA_CMP_DATA.rawValue) { $0.put(NFTA_DATA_VALUE.rawValue, bytes: data) }
                case .order(let op, let data):
                    d.put(NFTA_CMP_SREG.rawValue, be32: reg1)
                    d.put(NFTA_CMP_OP.rawValue, be32: op.raw)
                    d.nest(NFTA_CMP_DATA.rawValue) { $0.put(NFTA_DATA_VALUE.rawValue, bytes: data) }
                case .mask(let mask):
                    d.put(NFTA_BITWISE_SREG.rawValue, be32: reg1)
                    d.put(NFTA_BITWISE_DREG.rawValue, be32: reg1)
                    d.put(NFTA_BITWISE_LEN.rawValue, be32: UInt32(mask.count))
                    d.nest(NFTA_BITWISE_MASK.rawValue) { $0.put(NFTA_DATA_VALUE.rawValue, bytes: mask) }
                    d.nest(NFTA_BITWISE_XOR.rawValue) { $0.put(NFTA_DATA_VALUE.rawValue, bytes: [UInt8](repeating: 0, count: mask.count)) }
                case .lookup(let set, let map, let inverted):
                    d.put(NFTA_LOOKUP_SET.rawValue, string: set)
                    d.put(NFTA_LOOKUP_SREG.rawValue, be32: reg1)
                    if map { d.put(NFTA_LOOKUP_DREG.rawValue, be32: UInt32(NFT_REG_VERDICT.rawValue)) }
                    if inverted { d.put(NFTA_LOOKUP_FLAGS.rawValue, be32: NFT_LOOKUP_F_INV.rawValue) }
                case .counter(let name):
                    d.put(NFTA_OBJREF_IMM_TYPE.rawValue, be32: UInt32(NFT_OBJECT_COUNTER))
                    // Without a terminating NUL, as libnftnl sends it (the kernel compares lengths).
                    d.put(NFTA_OBJREF_IMM_NAME.rawValue, bytes: Array(name.utf8))
                case .verdict(let v):
                    d.put(NFTA_IMMEDIATE_DREG.rawValue, be32: UInt32(NFT_REG_VERDICT.rawValue))
                    d.nest(NFTA_IMMEDIATE_DATA.rawValue) { v.encode(into: &$0) }
                case .load(let data):
                    d.put(NFTA_IMMEDIATE_DREG.rawValue, be32: reg1)
                    d.nest(NFTA_IMMEDIATE_DATA.rawValue) { $0.put(NFTA_DATA_VALUE.rawValue, bytes: data) }
                case .setMeta(let key):
                    d.put(NFTA_META_KEY.rawValue, be32: key.raw)
                    d.put(NFTA_META_SREG.rawValue, be32: reg1)
                }
            }
        }
    }
}

/// An ordering comparison of `cmp`.
public enum NFTOrder: Sendable, Equatable {
    case less, lessOrEqual, greater, greaterOrEqual

    var raw: UInt32 {
        switch self {
        case .less: return NFT_CMP_LT.rawValue
        case .lessOrEqual: return NFT_CMP_LTE.rawValue
        case .greater: return NFT_CMP_GT.rawValue
        case .greaterOrEqual: return NFT_CMP_GTE.rawValue
        }
    }
}

/// Building blocks for matches, in the kernel's own encoding (what `nft` emits for the same
/// words).
public enum NFTMatch {
    /// `ether saddr` / `ether daddr`
    public static func etherSource() -> NFTExpression { .payload(.link, offset: 6, length: 6) }
    /// `ether type`
    public static func etherType(_ type: UInt16) -> [NFTExpression] {
        [.payload(.link, offset: 12, length: 2), .compare(equal: true, [UInt8(type >> 8), UInt8(type & 0xff)])]
    }

    /// A prefix match on `length` bytes read by `load`: equal when the masked bytes equal the
    /// network (`inverted`: not equal). A full-length prefix needs no mask.
    public static func prefix(_ load: NFTExpression, _ network: [UInt8], bits: Int, inverted: Bool = false) -> [NFTExpression] {
        var exprs = [load]
        if bits < network.count * 8 {
            var mask = [UInt8](repeating: 0, count: network.count)
            for i in 0..<network.count {
                let b = min(8, max(0, bits - i * 8))
                mask[i] = b == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - b))
            }
            exprs.append(.mask(mask))
            exprs.append(.compare(equal: !inverted, zip(network, mask).map { $0 & $1 }))
        } else {
            exprs.append(.compare(equal: !inverted, network))
        }
        return exprs
    }
}
