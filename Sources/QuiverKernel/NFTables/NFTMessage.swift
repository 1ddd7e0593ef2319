import CNetlink
import QuiverNetlink

/// nftables address families Quiver uses (`NFPROTO_*`).
public enum NFTFamily: UInt8, Sendable, Codable {
    case inet = 1
    case ipv4 = 2
    case arp = 3
    case netdev = 5
    case bridge = 7
    case ipv6 = 10

    public var name: String {
        switch self {
        case .inet: return "inet"
        case .ipv4: return "ip"
        case .arp: return "arp"
        case .netdev: return "netdev"
        case .bridge: return "bridge"
        case .ipv6: return "ip6"
        }
    }
}

/// The subsystem id nf_tables batches are addressed to.
public let nftablesSubsystem = UInt16(NFNL_SUBSYS_NFTABLES)

/// Starts an nf_tables message: `nlmsghdr` of type `(NFNL_SUBSYS_NFTABLES << 8) | message`,
/// then the `nfgenmsg` with the family.
/// `family` nil: `NFPROTO_UNSPEC`, every family (dumps).
func nftMessage(_ message: nf_tables_msg_types, family: NFTFamily?, flags: Int32 = 0) -> NetlinkMessage {
    var m = NetlinkMessage(type: (UInt32(NFNL_SUBSYS_NFTABLES) << 8) | message.rawValue, flags: flags)
    var g = nfgenmsg()
    g.nfgen_family = family?.rawValue ?? UInt8(NFPROTO_UNSPEC)
    g.version = UInt8(NFNETLINK_V0)
    g.res_id = 0
    m.append(header: g)
    return m
}

/// User data in the layout `nft` reads (a type-length-value with type 0, "comment"), so
/// `nft list ruleset` shows it as `comment "..."`.
public func nftComment(_ text: String) -> [UInt8] {
    let bytes = Array(text.utf8.prefix(253)) + [0]
    return [0, UInt8(bytes.count)] + bytes
}

/// The comment in user data written by ``nftComment(_:)`` (or by `nft ... comment`).
public func nftComment(decoding data: [UInt8]) -> String? {
    var i = 0
    while i + 2 <= data.count {
        let type = data[i], len = Int(data[i + 1])
        guard i + 2 + len <= data.count else { return nil }
        if type == 0 { return String(decoding: data[(i + 2)..<(i + 2 + len)].prefix { $0 != 0 }, as: UTF8.self) }
        i += 2 + len
    }
    return nil
}

/// `nlmsg_type` values of the nf_tables messages, for callers that sort requests.
public enum NFTMessageType {
    static func make(_ m: nf_tables_msg_types) -> UInt16 { UInt16((UInt32(NFNL_SUBSYS_NFTABLES) << 8) | m.rawValue) }
    public static let newTable = make(NFT_MSG_NEWTABLE)
    public static let newChain = make(NFT_MSG_NEWCHAIN)
    public static let newRule = make(NFT_MSG_NEWRULE)
    public static let newSet = make(NFT_MSG_NEWSET)
    public static let newSetElement = make(NFT_MSG_NEWSETELEM)
    public static let newObject = make(NFT_MSG_NEWOBJ)
}
