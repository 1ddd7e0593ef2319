import QuiverKernel
import QuiverNetlink
import QuiverProtection
import Testing

/// The ruleset is pure: what it asks the kernel for, without a kernel.
@Suite struct RulesetTests {
    static func port(_ dev: String, _ tenant: String, _ last: UInt8, _ kinds: Set<ProtectionKind> = [.macNospoof, .ipNospoof, .restricted]) -> ProtectedPort {
        ProtectedPort(device: dev, tenant: tenant, mac: try! MACAddress(bytes: [2, 0, 0, 0, 0, last]), protection: kinds,
                      allowed: [try! IPPrefix("10.55.0.\(10 + last)/32")])
    }

    func contexts(_ r: Ruleset) -> [String] { r.body().map(\.context.description) }

    @Test func chainsCountersAndSetsPerPortAndTenant() {
        let r = Ruleset(table: "quiver-t", ownerTag: "quiver:t/", ports: [Self.port("a1", "a", 1), Self.port("b1", "b", 2, [])])
        let c = contexts(r)
        // Protected port: its chain and the three sub-chains; counters of the kinds that are on.
        for chain in ["vnic/a1", "vnic/a1/ip4", "vnic/a1/ip6", "vnic/a1/arp"] {
            #expect(c.contains("create nftables chain quiver-t \(chain)"))
        }
        for counter in ["a1/mac", "a1/ip", "a1/restricted"] { #expect(c.contains("create nftables counter quiver-t \(counter)")) }
        #expect(!c.contains("create nftables counter quiver-t a1/dhcp"))
        // Unprotected port: no chain, no counters, but still isolated.
        #expect(!c.contains { $0.contains("vnic/b1") })
        #expect(c.contains("create nftables chain quiver-t tenant/b"))
        #expect(c.contains("create nftables counter quiver-t tenant/a/isolation"))
        #expect(c.contains("add nftables set elements quiver-t tenants (2)"))
        #expect(c.contains("add nftables set elements quiver-t vnics (1)"))
        // Everything a rule names is created before the first rule.
        let firstRule = c.firstIndex { $0.hasPrefix("create nftables rule") }!
        #expect(c[firstRule...].allSatisfy { $0.hasPrefix("create nftables rule") })
    }

    @Test func fingerprintFollowsContent() {
        let a = Ruleset(table: "quiver-t", ownerTag: "quiver:t/", ports: [Self.port("a1", "a", 1)])
        var b = a
        #expect(a.comment == b.comment)
        b.ports[0].allowed.append(try! IPPrefix("10.9.0.0/16"))
        #expect(a.comment != b.comment)
        b = a
        b.ports[0].protection.remove(.restricted)
        #expect(a.comment != b.comment)
        #expect(a.comment.hasPrefix("quiver:t/ "))
        // 2 base chains + 2 maps + tenant (chain, set, counter) + 9 vnic chains (vnic/DEV, /ip4,
        // /ip6, /arp, /ip6-unspecified, /dad, /nd, /na, /lladdr) + 3 counters + the table's shared
        // link-layer checks (chain nd-lladdr, set nd-macs, map nd-lladdr-drop), and the same count
        // as the messages that create chains, sets and counters.
        #expect(a.expectedUse == 2 + 2 + 3 + 9 + 3 + 3)
        let creating = a.body().filter { [NFTMessageType.newChain, NFTMessageType.newSet, NFTMessageType.newObject].contains($0.message.type) }
        #expect(Int(a.expectedUse) == creating.count)
        var mixed = a
        mixed.ports.append(Self.port("b1", "b", 2, [.macNospoof]))
        mixed.ports.append(Self.port("b2", "b", 3, []))
        let mixedCreating = mixed.body().filter { [NFTMessageType.newChain, NFTMessageType.newSet, NFTMessageType.newObject].contains($0.message.type) }
        #expect(Int(mixed.expectedUse) == mixedCreating.count)
    }

    @Test func macvtapsGetANetdevHalfAndMarks() {
        var m = Self.port("m1", "a", 5)
        m.attachment = .macvtap
        let r = Ruleset(table: "quiver-t", ownerTag: "quiver:t/", ports: [Self.port("a1", "a", 1), Self.port("b1", "b", 2), m])
        #expect(r.hasMacvtaps)
        let bridge = r.body().map(\.context.description), netdev = r.macvtapBody().map(\.context.description)
        // The macvtap's protection chains live in the netdev table only.
        #expect(!bridge.contains { $0.contains("vnic/m1") })
        #expect(netdev.contains("create nftables chain quiver-t vnic/m1/ip4"))
        #expect(netdev.contains("create nftables counter quiver-t m1/mac"))
        // Marks: the bridge marks its ports' frames and checks them at its output hook; the
        // netdev table only has tenant a's chains (b has no macvtap).
        for c in ["isolate-local", "mark/a", "mark/b", "tenant/a/local", "tenant/b/local"] {
            #expect(bridge.contains("create nftables chain quiver-t \(c)"), "\(c)")
        }
        for c in ["out", "in", "mark/a", "tenant/a"] { #expect(netdev.contains("create nftables chain quiver-t \(c)"), "\(c)") }
        #expect(!netdev.contains("create nftables chain quiver-t tenant/b"))
        #expect(r.mark("a") & 0xFFFF_0000 == r.markBase && r.mark("a") != r.mark("b"))
        // What the kernel will count in both tables together.
        let creating = (r.body() + r.macvtapBody()).filter {
            [NFTMessageType.newChain, NFTMessageType.newSet, NFTMessageType.newObject].contains($0.message.type)
        }
        #expect(Int(r.expectedUse) == creating.count)
        // Both tables in one transaction; without macvtaps the bridge table is as before and a
        // leftover netdev table is deleted.
        let t = r.transaction().map(\.context.description)
        #expect(t.contains("create nftables table netdev quiver-t"))
        var plain = r
        plain.ports.removeAll { $0.attachment == .macvtap }
        #expect(plain.macvtapBody().isEmpty && !plain.body().contains { $0.context.description.contains("mark/") })
        #expect(plain.transaction(netdevPresent: true).last?.context.description == "delete nftables table netdev quiver-t")
        #expect(!plain.transaction().contains { $0.context.description.contains("netdev") })
        #expect(plain.comment != r.comment)
    }

    @Test func transactionReplacesTheTableAtomically() {
        let r = Ruleset(table: "quiver-t", ownerTag: "quiver:t/", ports: [Self.port("a1", "a", 1)])
        let t = r.transaction().prefix(3).map(\.context.description)
        #expect(t == ["create nftables table bridge quiver-t", "delete nftables table bridge quiver-t", "create nftables table bridge quiver-t"])
    }

    @Test func linkLocalIsModifiedEUI64() {
        let p = Self.port("a1", "a", 1)
        #expect(p.linkLocal.description == "fe80::ff:fe00:1")
    }

    @Test func manyPortsSplitElementLists() {
        let ports = (0..<600).map { Self.port("p\($0)", "a", UInt8($0 % 200)) }
        let c = contexts(Ruleset(table: "quiver-t", ownerTag: "quiver:t/", ports: ports))
        #expect(c.filter { $0.hasPrefix("add nftables set elements quiver-t vnics") } == [
            "add nftables set elements quiver-t vnics (256)", "add nftables set elements quiver-t vnics (256)",
            "add nftables set elements quiver-t vnics (88)",
        ])
    }
}
