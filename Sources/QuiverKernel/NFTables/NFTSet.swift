import CNetlink
import QuiverNetlink

/// Requests for named sets and verdict maps keyed by interface name — what Quiver dispatches on.
/// Equivalent to `nft add set|map` and `nft add element`.
public enum NFTSetRequest {
    /// Interface names are 16-byte keys (`type ifname`).
    public static let interfaceNameKeyType: UInt32 = 41 // nft's TYPE_IFNAME, shown by `nft list`
    static let verdictType: UInt32 = 1 // TYPE_VERDICT

    /// `nft add set FAMILY TABLE NAME { type ifname; }` or, with `verdictMap`,
    /// `nft add map FAMILY TABLE NAME { type ifname : verdict; }`.
    /// `size`: how many elements it will hold — the kernel then picks a fixed-size hash instead of
    /// a resizable one (faster lookups on every packet).
    public static func addInterfaceSet(_ family: NFTFamily, table: String, _ name: String, id: UInt32, verdictMap: Bool,
                                       size: Int? = nil) -> NetlinkRequest {
        addSet(family, table: table, name, id: id, keyType: interfaceNameKeyType, keyLength: 16, verdictMap: verdictMap, size: size)
    }

    /// `type ifname . ether_addr`: nft numbers a concatenation's type by shifting each part's
    /// type in by 6 bits; the key is the name's 16 bytes, the MAC's 6 and 2 of padding.
    public static let interfaceMACKeyType: UInt32 = interfaceNameKeyType << 6 | 9 // TYPE_ETHERADDR

    /// A set of `(interface name . MAC)` keys.
    public static func addInterfaceMACSet(_ family: NFTFamily, table: String, _ name: String, id: UInt32, size: Int? = nil) -> NetlinkRequest {
        addSet(family, table: table, name, id: id, keyType: interfaceMACKeyType, keyLength: 24, verdictMap: false, size: size)
    }

    static func addSet(_ family: NFTFamily, table: String, _ name: String, id: UInt32, keyType: UInt32, keyLength: UInt32, verdictMap: Bool,
                       size: Int?) -> NetlinkRequest {
        var m = nftMessage(NFT_MSG_NEWSET, family: family, flags: NLM_F_CREATE)
        m.put(NFTA_SET_TABLE.rawValue, string: table)
        m.put(NFTA_SET_NAME.rawValue, string: name)
        m.put(NFTA_SET_FLAGS.rawValue, be32: verdictMap ? NFT_SET_MAP.rawValue : 0)
        m.put(NFTA_SET_KEY_TYPE.rawValue, be32: keyType)
        m.put(NFTA_SET_KEY_LEN.rawValue, be32: keyLength)
        if verdictMap {
            m.put(NFTA_SET_DATA_TYPE.rawValue, be32: NFT_DATA_VERDICT.rawValue)
            m.put(NFTA_SET_DATA_LEN.rawValue, be32: 0)
        }
        m.put(NFTA_SET_ID.rawValue, be32: id)
        if let size {
            m.put(NFTA_SET_POLICY.rawValue, be32: NFT_SET_POL_PERFORMANCE.rawValue)
            m.nest(NFTA_SET_DESC.rawValue) { $0.put(NFTA_SET_DESC_SIZE.rawValue, be32: UInt32(max(1, size))) }
        }
        // For `nft list`: the key is a host-order string (nft's own TLV: key byte order = host),
        // without which nft prints every name as "".
        m.put(NFTA_SET_USERDATA.rawValue, bytes: [0, 4] + withUnsafeBytes(of: UInt32(1)) { Array($0) })
        return NetlinkRequest(m, RequestContext("create nftables set", "\(table) \(name)"))
    }

    /// `nft add element FAMILY TABLE SET { "a" . 02:00:00:00:00:01, … }`.
    public static func addInterfaceMACElements(_ family: NFTFamily, table: String, set: String, _ elements: [(String, [UInt8])]) -> [NetlinkRequest] {
        addElements(family, table: table, set: set, elements.map { (NFTExpression.interfaceName($0.0) + $0.1 + [0, 0], nil) })
    }

    /// `nft add element FAMILY TABLE SET { "a", "b" }` or, for a map, `{ "a" : goto c }`.
    /// Returns one request per chunk: an element list is one attribute and must stay under 64 KiB.
    public static func addInterfaceElements(_ family: NFTFamily, table: String, set: String,
                                            _ elements: [(key: String, verdict: NFTVerdict?)]) -> [NetlinkRequest] {
        addElements(family, table: table, set: set, elements.map { (NFTExpression.interfaceName($0.key), $0.verdict) })
    }

    static func addElements(_ family: NFTFamily, table: String, set: String, _ elements: [(key: [UInt8], verdict: NFTVerdict?)]) -> [NetlinkRequest] {
        stride(from: 0, to: elements.count, by: 256).map { start in
            let chunk = elements[start..<min(start + 256, elements.count)]
            var m = nftMessage(NFT_MSG_NEWSETELEM, family: family, flags: NLM_F_CREATE)
            m.put(NFTA_SET_ELEM_LIST_TABLE.rawValue, string: table)
            m.put(NFTA_SET_ELEM_LIST_SET.rawValue, string: set)
            m.nest(NFTA_SET_ELEM_LIST_ELEMENTS.rawValue) { list in
                for e in chunk {
                    list.nest(NFTA_LIST_ELEM.rawValue) { el in
                        el.nest(NFTA_SET_ELEM_KEY.rawValue) { $0.put(NFTA_DATA_VALUE.rawValue, bytes: e.key) }
                        if let v = e.verdict { el.nest(NFTA_SET_ELEM_DATA.rawValue) { v.encode(into: &$0) } }
                    }
                }
            }
            return NetlinkRequest(m, RequestContext("add nftables set elements", "\(table) \(set) (\(chunk.count))"))
        }
    }
}
