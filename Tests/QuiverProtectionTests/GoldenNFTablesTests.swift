import CNetlink
import QuiverKernel
import QuiverNetlink
import Testing

/// nf_tables messages byte for byte against what `nft` 1.0.6 sends for the same words
/// (captured with `nft --debug=mnl`).
@Suite struct GoldenNFTablesTests {
    /// `nft add rule bridge t c ether saddr != 02:00:00:00:00:01 counter name x drop`
    @Test func ruleWithCounterAndDrop() throws {
        let r = NFTRuleRequest.add(.bridge, table: "t", chain: "c", [
            NFTMatch.etherSource(), .compare(equal: false, [2, 0, 0, 0, 0, 1]), .counter(named: "x"), .verdict(.drop),
        ])
        let expected: [UInt8] = [
            0x07, 0x00, 0x00, 0x00,                         // nfgenmsg: NFPROTO_BRIDGE, v0, res_id 0
            0x06, 0x00, 0x01, 0x00, 0x74, 0x00, 0x00, 0x00, // NFTA_RULE_TABLE "t"
            0x06, 0x00, 0x02, 0x00, 0x63, 0x00, 0x00, 0x00, // NFTA_RULE_CHAIN "c"
            0xbc, 0x00, 0x04, 0x80,                         // NFTA_RULE_EXPRESSIONS (nested, 188)
            0x34, 0x00, 0x01, 0x80,                         //  NFTA_LIST_ELEM
            0x0c, 0x00, 0x01, 0x00, 0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0x00, // "payload"
            0x24, 0x00, 0x02, 0x80,                         //   NFTA_EXPR_DATA
            0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, //    DREG 1
            0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, //    BASE link header
            0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x06, //    OFFSET 6
            0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x06, //    LEN 6
            0x30, 0x00, 0x01, 0x80,                         //  NFTA_LIST_ELEM
            0x08, 0x00, 0x01, 0x00, 0x63, 0x6d, 0x70, 0x00, //   "cmp"
            0x24, 0x00, 0x02, 0x80,
            0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, //    SREG 1
            0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, //    OP NFT_CMP_NEQ
            0x10, 0x00, 0x03, 0x80,                         //    DATA
            0x0a, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, // VALUE 02:00:00:00:00:01
            0x24, 0x00, 0x01, 0x80,                         //  NFTA_LIST_ELEM
            0x0b, 0x00, 0x01, 0x00, 0x6f, 0x62, 0x6a, 0x72, 0x65, 0x66, 0x00, 0x00, // "objref"
            0x14, 0x00, 0x02, 0x80,
            0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, //    IMM_TYPE NFT_OBJECT_COUNTER
            0x05, 0x00, 0x02, 0x00, 0x78, 0x00, 0x00, 0x00, //    IMM_NAME "x"
            0x30, 0x00, 0x01, 0x80,                         //  NFTA_LIST_ELEM
            0x0e, 0x00, 0x01, 0x00, 0x69, 0x6d, 0x6d, 0x65, 0x64, 0x69, 0x61, 0x74, 0x65, 0x00, 0x00, 0x00, // "immediate"
            0x1c, 0x00, 0x02, 0x80,
            0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, //    DREG verdict
            0x10, 0x00, 0x02, 0x80,                         //    DATA
            0x0c, 0x00, 0x02, 0x80,                         //     NFTA_DATA_VERDICT
            0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, //      CODE NF_DROP
        ]
        let bytes = r.message.bytes
        #expect(bytes.count == 224)
        #expect(r.message.type == UInt16(NFNL_SUBSYS_NFTABLES) << 8 | UInt16(NFT_MSG_NEWRULE.rawValue))
        #expect(Array(bytes[16...]) == expected)
    }

    /// `nft add rule bridge t c iifname . ether saddr != @s drop` (a set of `ifname . ether_addr`):
    /// the name in register 1, the address in register 2 right behind it, one lookup of both.
    @Test func concatenatedLookup() throws {
        let r = NFTRuleRequest.add(.bridge, table: "t", chain: "c", [
            .meta(.inputInterfaceName), .payloadInto(register: 2, .link, offset: 6, length: 6), .lookup(set: "s", map: false, inverted: true),
            .verdict(.drop),
        ])
        let payload: [UInt8] = [
            0x34, 0x00, 0x01, 0x80,                         // NFTA_LIST_ELEM (52)
            0x0c, 0x00, 0x01, 0x00, 0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0x00, // "payload"
            0x24, 0x00, 0x02, 0x80,                         //  NFTA_EXPR_DATA
            0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02, //   DREG 2
            0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, //   BASE link header
            0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x06, //   OFFSET 6
            0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x06, //   LEN 6
        ]
        let bytes = r.message.bytes
        let at = try #require((0...(bytes.count - payload.count)).first { Array(bytes[$0..<($0 + payload.count)]) == payload })
        // Right after the meta load of the name into register 1 (36 bytes; nft sends KEY before
        // DREG, the kernel takes either order).
        let meta: [UInt8] = [0x24, 0x00, 0x01, 0x80, 0x09, 0x00, 0x01, 0x00, 0x6d, 0x65, 0x74, 0x61, 0x00, 0x00, 0x00, 0x00,
                             0x14, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x06]
        #expect(Array(bytes[(at - meta.count)..<at]) == meta)
        // The set's key: 16 bytes of name, 6 of MAC, 2 of padding; type ifname . ether_addr.
        let set = NFTSetRequest.addInterfaceMACSet(.bridge, table: "t", "s", id: 1)
        #expect(NFTSetRequest.interfaceMACKeyType == 41 << 6 | 9)
        #expect(set.message.bytes.windows(of: [0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x18]), "NFTA_SET_KEY_LEN 24")
        let element = NFTSetRequest.addInterfaceMACElements(.bridge, table: "t", set: "s", [("e1h", [2, 0, 0, 0, 0, 1])])[0]
        #expect(element.message.bytes.windows(of: [0x1c, 0x00, 0x01, 0x00] + Array("e1h".utf8) + [UInt8](repeating: 0, count: 13) + [2, 0, 0, 0, 0, 1, 0, 0]),
                "NFTA_DATA_VALUE: name, MAC, padding")
    }

    /// `nft add rule netdev t x meta mark set 0x51000001`: the mark is loaded into register 1 in
    /// host byte order, then `meta set` takes it from there.
    @Test func metaMarkSet() {
        let r = NFTRuleRequest.add(.netdev, table: "t", chain: "x", [.load(NFTExpression.markBytes(0x5100_0001)), .setMeta(.mark)])
        let expected: [UInt8] = [
            0x05, 0x00, 0x00, 0x00,                         // nfgenmsg: NFPROTO_NETDEV
            0x06, 0x00, 0x01, 0x00, 0x74, 0x00, 0x00, 0x00, // NFTA_RULE_TABLE "t"
            0x06, 0x00, 0x02, 0x00, 0x78, 0x00, 0x00, 0x00, // NFTA_RULE_CHAIN "x"
            0x54, 0x00, 0x04, 0x80,                         // NFTA_RULE_EXPRESSIONS (84)
            0x2c, 0x00, 0x01, 0x80,                         //  NFTA_LIST_ELEM
            0x0e, 0x00, 0x01, 0x00, 0x69, 0x6d, 0x6d, 0x65, 0x64, 0x69, 0x61, 0x74, 0x65, 0x00, 0x00, 0x00, // "immediate"
            0x18, 0x00, 0x02, 0x80,
            0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, //    DREG 1
            0x0c, 0x00, 0x02, 0x80,                         //    DATA
            0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x51, //     VALUE 0x51000001, host order
            0x24, 0x00, 0x01, 0x80,                         //  NFTA_LIST_ELEM
            0x09, 0x00, 0x01, 0x00, 0x6d, 0x65, 0x74, 0x61, 0x00, 0x00, 0x00, 0x00, // "meta"
            0x14, 0x00, 0x02, 0x80,
            0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, //    KEY NFT_META_MARK
            0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01, //    SREG 1
        ]
        #expect(Array(r.message.bytes[16...]) == expected)
    }

    /// The hook of `nft add chain netdev t c { type filter hook egress devices = { qa } priority -200; }`:
    /// hook number, priority, then the device names in an NFTA_HOOK_DEVS nest.
    @Test func netdevChainHookWithDevices() throws {
        let r = NFTChainRequest.addBase(.netdev, table: "t", "c", hook: .egress, priority: -200, devices: ["qa"])
        let hook: [UInt8] = [
            0x20, 0x00, 0x04, 0x80,                         // NFTA_CHAIN_HOOK (32)
            0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, //  HOOKNUM NF_NETDEV_EGRESS
            0x08, 0x00, 0x02, 0x00, 0xff, 0xff, 0xff, 0x38, //  PRIORITY -200
            0x0c, 0x00, 0x04, 0x80,                         //  NFTA_HOOK_DEVS
            0x07, 0x00, 0x01, 0x00, 0x71, 0x61, 0x00, 0x00, //   NFTA_DEVICE_NAME "qa"
        ]
        let bytes = Array(r.message.bytes[16...])
        let at = try #require((0..<bytes.count - 4).first { bytes[$0...].starts(with: hook.prefix(4)) })
        #expect(Array(bytes[at..<at + hook.count]) == hook)
    }

    /// A /20 prefix needs a mask: `payload`, `bitwise` (mask, xor 0), `cmp` of the masked network.
    @Test func prefixMatchMasksPartialBytes() {
        let e = NFTMatch.prefix(.payload(.network, offset: 12, length: 4), [10, 1, 31, 7], bits: 20)
        #expect(e == [.payload(.network, offset: 12, length: 4), .mask([255, 255, 240, 0]), .compare(equal: true, [10, 1, 16, 0])])
        #expect(NFTMatch.prefix(.payload(.network, offset: 12, length: 4), [10, 1, 1, 1], bits: 32)
            == [.payload(.network, offset: 12, length: 4), .compare(equal: true, [10, 1, 1, 1])])
    }

    /// Comments are stored the way `nft` stores them, so `nft list` shows them.
    @Test func commentRoundTrips() {
        let c = nftComment("quiver:lab/ 1f")
        #expect(c.prefix(2) == [0, 15])
        #expect(nftComment(decoding: c) == "quiver:lab/ 1f")
        #expect(nftComment(decoding: [7, 1, 0]) == nil)
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs somewhere in the bytes.
    func windows(of needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}
