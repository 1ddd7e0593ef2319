import QuiverKernel
import QuiverNetlink
import QuiverProtection
import Testing

/// A node's extra rules (pure): the underlay allow-list in an `inet` table of the topology's
/// name, and the guards that keep the bridge from answering ARP/ND across tenants.
@Suite struct SegmentRulesTests {
    func ruleset() throws -> Ruleset {
        var r = Ruleset(table: "quiver-t", ownerTag: "quiver:t@n1/", ports: [RulesetTests.port("a1", "a", 1)])
        r.ports.append(ProtectedPort(device: "t.v1", tenant: "a", mac: MACAddress(0, 0, 0, 0, 0, 0), protection: [], allowed: []))
        r.suppressed = [SuppressedAddress(address: try IPAddress("10.55.0.20"), tenant: "a"), SuppressedAddress(address: try IPAddress("fd00::20"), tenant: "a")]
        r.underlay = UnderlayGuard(vnis: [100, 0xABCDEF], sources: [try IPAddress("192.0.2.1"), try IPAddress("2001:db8::2")])
        return r
    }

    @Test func underlayTableAcceptsTheNodesAndDropsTheRestOfItsVNIs() throws {
        let r = try ruleset()
        let u = r.underlayBody()
        #expect(u.map(\.context.description) == [
            "create nftables counter quiver-t underlay/dropped",
            "create nftables chain quiver-t underlay",
            "create nftables chain quiver-t vxlan",
        ] + Array(repeating: "create nftables rule quiver-t underlay", count: 1)
          + Array(repeating: "create nftables rule quiver-t vxlan", count: 4))
        let bytes = u.map(\.message.bytes)
        // Sources: one rule per node with its family (meta nfproto 2 / 10) and address.
        let v6 = try IPAddress("2001:db8::2").bytes
        #expect(bytes[4].windows(of: [192, 0, 2, 1]) && bytes[5].windows(of: v6))
        // VNIs: the 24 bits the kernel reads, masked off the reserved byte, then counted and dropped.
        #expect(bytes[6].windows(of: [0xFF, 0xFF, 0xFF, 0x00]) && bytes[6].windows(of: [0, 0, 100, 0]))
        #expect(bytes[7].windows(of: [0xAB, 0xCD, 0xEF, 0]) && bytes[7].windows(of: Array("underlay/dropped".utf8)))
        // The transaction makes the inet table in the same commit; without a guard it goes.
        let t = r.transaction().map(\.context.description)
        #expect(t.contains("create nftables table inet quiver-t"))
        var plain = r
        plain.underlay = nil
        #expect(plain.underlayBody().isEmpty)
        #expect(plain.transaction(inetPresent: true).last?.context.description == "delete nftables table inet quiver-t")
        #expect(!plain.transaction().contains { $0.context.description.contains("inet") })
        // The guard is part of the fingerprint and of the expected use (3 objects).
        #expect(plain.comment != r.comment && r.expectedUse == plain.expectedUse + 3)
    }

    @Test func suppressedAddressesMayBeAskedForOnlyByTheirTenant() throws {
        let r = try ruleset()
        let body = r.body()
        let protect = body.filter { $0.context.description == "create nftables rule quiver-t protect" }.map(\.message.bytes)
        // The two guards come before the verdict map that sends VNICs to their chains.
        #expect(protect.count == 3)
        #expect(protect[0].windows(of: [10, 55, 0, 20]) && protect[0].windows(of: Array("ports/a".utf8)) && protect[0].windows(of: Array("tenant/a/isolation".utf8)))
        let target = try IPAddress("fd00::20").bytes
        #expect(protect[1].windows(of: target) && protect[1].windows(of: [135]))
        #expect(protect[2].windows(of: Array("vnics".utf8)))
        // The VXLAN port is one of its tenant's ports, with no chain of its own.
        #expect(!body.contains { $0.context.description.contains("vnic/t.v1") })
        #expect(body.map(\.context.description).contains("add nftables set elements quiver-t ports/a (2)"))
    }
}
