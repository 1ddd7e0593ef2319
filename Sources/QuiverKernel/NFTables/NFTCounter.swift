import CNetlink
import QuiverNetlink

/// A named counter object (`nft add counter`), as the kernel reports it.
public struct NFTCounter: Sendable, Equatable {
    public var table: String
    public var name: String
    public var packets: UInt64
    public var bytes: UInt64

    init?(decoding msg: ReceivedMessage) {
        let a = msg.attributes(after: nfgenmsg.self)
        guard let table = a.string(NFTA_OBJ_TABLE.rawValue), let name = a.string(NFTA_OBJ_NAME.rawValue),
              a.u32(NFTA_OBJ_TYPE.rawValue).map({ UInt32(bigEndian: $0) }) == UInt32(NFT_OBJECT_COUNTER),
              let data = a.nested(NFTA_OBJ_DATA.rawValue) else { return nil }
        self.table = table
        self.name = name
        packets = data.u64(NFTA_COUNTER_PACKETS.rawValue).map { UInt64(bigEndian: $0) } ?? 0
        bytes = data.u64(NFTA_COUNTER_BYTES.rawValue).map { UInt64(bigEndian: $0) } ?? 0
    }
}

/// Requests for named counters.
public enum NFTCounterRequest {
    /// `nft add counter FAMILY TABLE NAME`
    public static func add(_ family: NFTFamily, table: String, _ name: String) -> NetlinkRequest {
        var m = nftMessage(NFT_MSG_NEWOBJ, family: family, flags: NLM_F_CREATE)
        m.put(NFTA_OBJ_TABLE.rawValue, string: table)
        m.put(NFTA_OBJ_NAME.rawValue, string: name)
        m.put(NFTA_OBJ_TYPE.rawValue, be32: UInt32(NFT_OBJECT_COUNTER))
        m.nest(NFTA_OBJ_DATA.rawValue) { d in
            d.put(NFTA_COUNTER_BYTES.rawValue, value: UInt64(0))
            d.put(NFTA_COUNTER_PACKETS.rawValue, value: UInt64(0))
        }
        return NetlinkRequest(m, RequestContext("create nftables counter", "\(table) \(name)"))
    }

    /// Every counter of one table: `nft list counters table FAMILY TABLE`.
    public static func dump(_ family: NFTFamily, table: String) -> NetlinkRequest {
        var m = nftMessage(NFT_MSG_GETOBJ, family: family, flags: NLM_F_DUMP)
        m.put(NFTA_OBJ_TABLE.rawValue, string: table)
        m.put(NFTA_OBJ_TYPE.rawValue, be32: UInt32(NFT_OBJECT_COUNTER))
        return NetlinkRequest(m, RequestContext("list nftables counters", "\(family.name) \(table)"))
    }
}

extension NetlinkHandle {
    /// The table's named counters, by name.
    public func nftCounters(_ family: NFTFamily, table: String) throws -> [String: NFTCounter] {
        let list = try perform(NFTCounterRequest.dump(family, table: table)).compactMap(NFTCounter.init(decoding:))
        return Dictionary(list.filter { $0.table == table }.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }
}
