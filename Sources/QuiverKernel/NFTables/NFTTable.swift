import CNetlink
import QuiverNetlink

/// An nftables table as the kernel reports it.
public struct NFTTable: Sendable, Equatable {
    public var family: NFTFamily
    public var name: String
    /// Chains, sets and objects in it (`NFTA_TABLE_USE`).
    public var use: UInt32
    public var flags: UInt32
    /// `NFTA_TABLE_USERDATA`: free bytes the creator stored (Quiver's ownership tag).
    public var userData: [UInt8]

    /// The comment stored in the user data (`nft add table ... { comment "..." }`).
    public var comment: String? { nftComment(decoding: userData) }

    init?(decoding msg: ReceivedMessage) {
        guard let g = try? msg.header(as: nfgenmsg.self), let f = NFTFamily(rawValue: g.nfgen_family) else { return nil }
        let a = msg.attributes(after: nfgenmsg.self)
        guard let name = a.string(NFTA_TABLE_NAME.rawValue) else { return nil }
        family = f
        self.name = name
        use = a.u32(NFTA_TABLE_USE.rawValue).map { UInt32(bigEndian: $0) } ?? 0
        flags = a.u32(NFTA_TABLE_FLAGS.rawValue).map { UInt32(bigEndian: $0) } ?? 0
        userData = a.payload(NFTA_TABLE_USERDATA.rawValue) ?? []
    }
}

/// Requests for tables. Equivalent to `nft add table`, `nft delete table`, `nft list tables`.
public enum NFTTableRequest {
    /// `nft add table FAMILY NAME { comment "..." }` (no error if it exists).
    public static func add(_ family: NFTFamily, _ name: String, comment: String? = nil) -> NetlinkRequest {
        var m = nftMessage(NFT_MSG_NEWTABLE, family: family, flags: NLM_F_CREATE)
        m.put(NFTA_TABLE_NAME.rawValue, string: name)
        if let c = comment { m.put(NFTA_TABLE_USERDATA.rawValue, bytes: nftComment(c)) }
        return NetlinkRequest(m, RequestContext("create nftables table", "\(family.name) \(name)"))
    }

    /// `nft delete table FAMILY NAME`: the table and everything in it.
    public static func delete(_ family: NFTFamily, _ name: String) -> NetlinkRequest {
        var m = nftMessage(NFT_MSG_DELTABLE, family: family)
        m.put(NFTA_TABLE_NAME.rawValue, string: name)
        return NetlinkRequest(m, RequestContext("delete nftables table", "\(family.name) \(name)"))
    }

    /// One table by name.
    public static func get(_ family: NFTFamily, _ name: String) -> NetlinkRequest {
        var m = nftMessage(NFT_MSG_GETTABLE, family: family)
        m.put(NFTA_TABLE_NAME.rawValue, string: name)
        return NetlinkRequest(m, RequestContext("get nftables table", "\(family.name) \(name)"))
    }

    /// Every table of `family` (`nil`: all families).
    public static func dump(_ family: NFTFamily?) -> NetlinkRequest {
        NetlinkRequest(nftMessage(NFT_MSG_GETTABLE, family: family, flags: NLM_F_DUMP), RequestContext("list nftables tables"))
    }
}

extension NetlinkHandle {
    /// The table, or nil if the kernel has none of that name.
    public func nftTable(_ family: NFTFamily, _ name: String) throws -> NFTTable? {
        do {
            return try perform(NFTTableRequest.get(family, name)).compactMap(NFTTable.init(decoding:)).first
        } catch let e as NetlinkError where e.errno == .noSuchFileOrDirectory {
            return nil
        }
    }

    /// Every table (of one family, or of all).
    public func nftTables(_ family: NFTFamily? = nil) throws -> [NFTTable] {
        try perform(NFTTableRequest.dump(family)).compactMap(NFTTable.init(decoding:))
    }

    /// Runs `requests` as one nf_tables transaction: all or nothing.
    public func nftTransaction(_ requests: [NetlinkRequest]) throws {
        try socket.transaction(requests, subsystem: nftablesSubsystem)
    }
}
