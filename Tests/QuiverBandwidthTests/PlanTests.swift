import CNetlink
import QuiverBandwidth
import QuiverKernel
import Testing

/// Pure: units, bucket/queue sizes, and the planner from cap groups to tc objects.
@Suite struct BitrateTests {
    @Test func dladmUnits() throws {
        #expect(try Bitrate("100M").bitsPerSecond == 100_000_000)
        #expect(try Bitrate("1G").bitsPerSecond == 1_000_000_000)
        #expect(try Bitrate("500K").bitsPerSecond == 500_000)
        #expect(try Bitrate("1.5g").bitsPerSecond == 1_500_000_000)
        #expect(try Bitrate("50").bitsPerSecond == 50_000_000, "a bare number is Mbit/s")
        #expect(try Bitrate("0").isBlocked)
        #expect(try Bitrate("2.5M").description == "2.5M")
        #expect(Bitrate.mbit(50).description == "50M")
        #expect(Bitrate.gbit(5).description == "5G")
    }

    @Test func badUnitsSayWhatToDo() {
        let e = #expect(throws: InvalidValue.self) { try Bitrate("100Mbps") }
        #expect(e?.description.contains("use K, M or G") == true)
        #expect(throws: InvalidValue.self) { try Bitrate("fast") }
        #expect(throws: InvalidValue.self) { try Bitrate("-5M") }
        #expect(throws: InvalidValue.self) { try Bitrate("2K") }       // below what a shaper can do
        #expect(throws: InvalidValue.self) { try Bitrate("900G") }     // above the supported maximum
    }

    @Test func tcHandles() throws {
        #expect(TCHandle(major: 1, minor: 0x10).description == "1:10")
        #expect(try TCHandle("1:10") == TCHandle(major: 1, minor: 0x10))
        #expect(try TCHandle("ffff:") == TCHandle.ingressHandle)
        #expect(TCHandle.root.description == "root")
        #expect(throws: InvalidValue.self) { try TCHandle("1-10") }
    }
}

@Suite struct ShapingPolicyTests {
    let p = ShapingPolicy()

    @Test func burstIsTenMillisecondsButNeverBelowTwoFramesNorHuge() {
        #expect(p.burst(for: .mbit(1)) == 3028)              // 1250 B at 10 ms < two frames
        #expect(p.burst(for: .mbit(100)) == 125_000)         // 10 ms at 100 Mbit/s
        #expect(p.burst(for: .gbit(5)) == 6_250_000)         // 10 ms at 5 Gbit/s
        #expect(p.burst(for: .gbit(400)) == 64 << 20)        // capped
    }

    @Test func queueIsFiveMillisecondsWithRoomForATCPWindow() {
        #expect(p.queueLimit(for: .mbit(2)) == 8 * 1514)
        #expect(p.queueLimit(for: .mbit(100)) == 62_500)
        #expect(p.queueLimit(for: Bitrate(bitsPerSecond: 0)) == 0)
        #expect(p.leafQueue(for: Bitrate(bitsPerSecond: 0)) == .bfifo(limit: 0), "blocked: drop everything")
        guard case .tbf(let t) = p.leafQueue(for: .mbit(100)) else { Issue.record("leaf is not a tbf"); return }
        #expect(t.limit == 62_500)
        #expect(t.rate > .gbit(10), "the segmenting TBF is never the bottleneck")
        #expect(p.segmentAbove(limit: p.queueLimit(for: .mbit(2))) == 2 * 1514, "low rates: split super-packets")
        #expect(p.segmentAbove(limit: p.queueLimit(for: .gbit(5))) == 128 << 10, "high rates: pass them whole")
    }

    @Test func quantumStaysInTheKernelsQuietRange() {
        #expect(p.quantum(for: .kbit(8)) == 1514)
        #expect(p.quantum(for: .mbit(100)) == 12_500)
        #expect(p.quantum(for: .gbit(10)) == 200_000)
    }
}

@Suite struct ShapingPlanTests {
    func mac(_ n: Int) -> MACAddress { try! MACAddress(String(format: "02:00:00:00:00:%02x", n)) }

    func tenant(_ members: [CapMember], maxbw: Bitrate? = .mbit(60)) -> CapGroup {
        CapGroup(name: "acme", ifbFrom: "acme-f", ifbTo: "acme-t", maxbw: maxbw, members: members, ownerTag: "quiver:t/acme")
    }

    @Test func floorsAreRatesTheRestShareWhatIsLeft() {
        let g = tenant([
            CapMember(name: "web", device: "w0", mac: mac(1), maxbw: .mbit(50), floor: .mbit(30)),
            CapMember(name: "db", device: "d0", mac: mac(2), maxbw: .mbit(50)),
            CapMember(name: "log", device: "l0", mac: mac(3)),
        ])
        #expect(g.problems().isEmpty)
        let l = ShapingPlan.layout(g, .fromEndpoint)
        let byLabel = Dictionary(uniqueKeysWithValues: l.classes.map { ($0.label, $0) })
        #expect(byLabel["aggregate"]?.htb.rate == .mbit(60))
        #expect(byLabel["aggregate"]?.htb.ceil == .mbit(60))
        #expect(byLabel["web"]?.htb.rate == .mbit(30))
        #expect(byLabel["web"]?.htb.ceil == .mbit(50))
        // 60 - 30 - 0.6 (default class) split by two.
        #expect(byLabel["db"]?.htb.rate == .kbit(14_700))
        #expect(byLabel["log"]?.htb.ceil == .mbit(60), "no maxbw: the tenant's cap")
        #expect(byLabel["default"]?.htb.rate == .kbit(600))
        // Each member is an inner class with a bulk leaf and a small-packet leaf (prio 0).
        #expect(byLabel["web"]?.leafQueue == nil)
        #expect(byLabel["web/other"]?.htb.rate == .mbit(27))
        #expect(byLabel["web/other"]?.htb.priority == 1)
        #expect(byLabel["web/small"]?.htb.rate == .mbit(3))
        #expect(byLabel["web/small"]?.htb.priority == 0)
        #expect(byLabel["web/small"]?.htb.ceil == .mbit(50))
        // One MAC filter per member, on the source MAC for traffic from endpoints, to its bulk leaf.
        let memberFilters = l.filters.filter { $0.priority == ShapingPlan.memberPriority }
        #expect(memberFilters.count == 3)
        #expect(memberFilters[0].filter.keys == U32Key.etherSource(mac(1)))
        #expect(memberFilters[0].filter.classID == byLabel["web/other"]?.id)
        let small = l.filters.filter { $0.priority == ShapingPlan.smallPriorityV4 }
        #expect(small.count == 3)
        #expect(small[0].filter.keys == U32Key.etherSource(mac(1)) + [U32Key.ipv4ShortPacket])
        #expect(small[0].filter.classID == byLabel["web/small"]?.id)
        let toWeb = ShapingPlan.layout(g, .toEndpoint).filters.first { $0.priority == ShapingPlan.memberPriority }
        #expect(toWeb?.filter.keys == U32Key.etherDestination(mac(1)))
    }

    @Test func flowsAreChildClassesMatchedBeforeTheirMember() throws {
        let http = FlowCap(name: "http", transport: .tcp, localPort: 80, maxbw: .mbit(20))
        let blocked = FlowCap(name: "dns", transport: .udp, remoteIP: try IPPrefix("10.0.0.0/8"), remotePort: 53, maxbw: Bitrate(bitsPerSecond: 0))
        let g = tenant([CapMember(name: "web", device: "w0", mac: mac(1), maxbw: .mbit(50), flows: [http, blocked])])
        let out = ShapingPlan.layout(g, .fromEndpoint)
        let web = try #require(out.classes.first { $0.label == "web" })
        #expect(web.leafQueue == nil, "a member is an inner class")
        let other = try #require(out.classes.first { $0.label == "web/other" })
        #expect(other.parent == web.id)
        let httpClass = try #require(out.classes.first { $0.label == "web/http" })
        #expect(httpClass.htb.ceil == .mbit(20))
        let dnsClass = try #require(out.classes.first { $0.label == "web/dns" })
        #expect(dnsClass.leafQueue == .bfifo(limit: 0), "maxbw 0 blocks the flow")

        let flowFilters = out.filters.filter { $0.priority == ShapingPlan.flowPriorityV4 || $0.priority == ShapingPlan.flowPriorityV6 }
        // http: IPv4 and IPv6 (no prefix given); dns: IPv4 only (its prefix is IPv4).
        #expect(flowFilters.count == 3)
        let v4http = try #require(flowFilters.first { $0.filter.classID == httpClass.id && $0.protocolNumber == UInt16(ETH_P_IP) })
        // Sent by the endpoint: local port is the source port.
        #expect(v4http.filter.keys.contains(U32Key.ipv4SourcePort(80)))
        #expect(v4http.filter.keys.contains(U32Key.ipv4Protocol(6)))
        #expect(v4http.filter.keys.contains(U32Key.ipv4NoOptions))
        let inbound = ShapingPlan.layout(g, .toEndpoint).filters.first { $0.filter.classID == httpClass.id && $0.protocolNumber == UInt16(ETH_P_IP) }
        #expect(inbound?.filter.keys.contains(U32Key.ipv4DestinationPort(80)) == true)
        let dns = try #require(flowFilters.first { $0.filter.classID == dnsClass.id })
        #expect(dns.filter.keys.contains(U32Key(mask: 0xFF00_0000, value: 0x0A00_0000, offset: 16)), "remote 10/8 is the destination")
        #expect(dns.filter.keys.contains(U32Key.ipv4DestinationPort(53)))
    }

    @Test func perVNICBurstAndQueueOverrideThePolicy() throws {
        let g = tenant([CapMember(name: "web", device: "w0", mac: mac(1), maxbw: .mbit(50), burst: 100_000, queueLimit: 40_000)])
        let l = ShapingPlan.layout(g, .fromEndpoint)
        let bulk = try #require(l.classes.first { $0.label == "web/other" })
        #expect(bulk.htb.burst == 100_000 && bulk.htb.cburst == 100_000)
        guard case .tbf(let t)? = bulk.leafQueue else { Issue.record("no tbf leaf"); return }
        #expect(t.limit == 40_000)
        let tiny = tenant([CapMember(name: "web", device: "w0", mac: mac(1), burst: 100)])
        #expect(tiny.problems().contains { $0.contains("burst 100 is smaller than one frame") })
    }

    /// A guest's outbound bulk (and flow) leaves hold a 64 KiB super-packet burst twice over; its
    /// inbound leaves and its small-packet leaf keep the usual 5 ms; a namespace's are unchanged.
    @Test func aGuestsOutboundBulkQueueHoldsABurst() throws {
        let guest = tenant([CapMember(name: "vm", device: "t0", mac: mac(1), maxbw: .mbit(50), flows: [FlowCap(name: "web", transport: .tcp, localPort: 80, maxbw: .mbit(20))],
                                      guestSender: true)], maxbw: nil)
        func limit(_ g: CapGroup, _ d: Direction, _ label: String) -> UInt32? {
            switch ShapingPlan.layout(g, d).classes.first(where: { $0.label == label })?.leafQueue {
            case .tbf(let t)?: return t.limit
            case .bfifo(let l)?: return l
            default: return nil
            }
        }
        let usual = ShapingPolicy().queueLimit(for: .mbit(50))
        #expect(usual == 31_250)
        #expect(limit(guest, .fromEndpoint, "vm/other") == 128 << 10)
        #expect(limit(guest, .fromEndpoint, "vm/web") == 128 << 10)
        #expect(limit(guest, .fromEndpoint, "vm/small") == usual)
        #expect(limit(guest, .toEndpoint, "vm/other") == usual)
        let namespace = tenant([CapMember(name: "ns", device: "v0", mac: mac(2), maxbw: .mbit(50))], maxbw: nil)
        #expect(limit(namespace, .fromEndpoint, "ns/other") == usual)
        // Above ~200M the usual queue is larger anyway; an explicit `queue:` still wins.
        #expect(ShapingPolicy().guestQueueLimit(for: .gbit(1)) == ShapingPolicy().queueLimit(for: .gbit(1)))
        let overridden = tenant([CapMember(name: "vm", device: "t0", mac: mac(1), maxbw: .mbit(50), queueLimit: 20_000, guestSender: true)], maxbw: nil)
        #expect(limit(overridden, .fromEndpoint, "vm/other") == 20_000)
    }

    @Test func blockedMemberDropsEverything() throws {
        let g = tenant([CapMember(name: "quarantine", device: "q0", mac: mac(9), maxbw: Bitrate(bitsPerSecond: 0))], maxbw: nil)
        let c = try #require(ShapingPlan.layout(g, .toEndpoint).classes.first { $0.label == "quarantine" })
        #expect(c.leafQueue == .bfifo(limit: 0))
    }

    @Test func problemsAreAllReported() throws {
        let g = tenant([
            CapMember(name: "a", device: "a0", mac: nil, maxbw: .mbit(10), floor: .mbit(40)),
            CapMember(name: "b", device: "b0", mac: mac(2), floor: .mbit(40),
                      flows: [FlowCap(name: "x", transport: .icmp, localPort: 1, maxbw: .mbit(1)),
                              FlowCap(name: "x", maxbw: .mbit(1))]),
        ])
        let p = g.problems()
        #expect(p.contains { $0.contains("a: a VNIC sharing a cap with others needs a MAC") })
        #expect(p.contains { $0.contains("floor 40M is above its maxbw 10M") })
        #expect(p.contains { $0.contains("floors add up to 80M, above its maxbw 60M") })
        #expect(p.contains { $0.contains("flow x is defined twice") })
        #expect(p.contains { $0.contains("transport must be tcp or udp") })
    }
}

/// u32 keys against what `tc filter add ... u32 match ...` produces (tc's own printout).
@Suite struct U32KeyTests {
    @Test func keysMatchTcsEncoding() throws {
        // tc: match ip protocol 6 0xff → 00060000/00ff0000 at 8
        #expect(U32Key.ipv4Protocol(6) == U32Key(mask: 0x00ff_0000, value: 0x0006_0000, offset: 8))
        // tc: match ip dport 80 0xffff → 00000050/0000ffff at 20
        #expect(U32Key.ipv4DestinationPort(80) == U32Key(mask: 0x0000_ffff, value: 0x0000_0050, offset: 20))
        // tc: match ip sport 80 0xffff → 00500000/ffff0000 at 20
        #expect(U32Key.ipv4SourcePort(80) == U32Key(mask: 0xffff_0000, value: 0x0050_0000, offset: 20))
        // tc: match ip src 10.1.0.0/16 → 0a010000/ffff0000 at 12
        #expect(U32Key.ipv4Source(try IPPrefix("10.1.0.0/16")) == [U32Key(mask: 0xffff_0000, value: 0x0a01_0000, offset: 12)])
        // tc: match ip6 nexthdr 17 0xff → 00001100/0000ff00 at 4
        #expect(U32Key.ipv6NextHeader(17) == U32Key(mask: 0x0000_ff00, value: 0x0000_1100, offset: 4))
        // tc: match ether src 02:00:00:00:00:07 → 02000000/ffffffff at -8, 00070000/ffff0000 at -4
        #expect(U32Key.etherSource(try MACAddress("02:00:00:00:00:07")) == [
            U32Key(mask: 0xffff_ffff, value: 0x0200_0000, offset: -8), U32Key(mask: 0xffff_0000, value: 0x0007_0000, offset: -4)])
        // tc: match ether dst 02:00:00:00:00:07 → 00000200/0000ffff at -16, 00000007/ffffffff at -12
        #expect(U32Key.etherDestination(try MACAddress("02:00:00:00:00:07")) == [
            U32Key(mask: 0x0000_ffff, value: 0x0000_0200, offset: -16), U32Key(mask: 0xffff_ffff, value: 0x0000_0007, offset: -12)])
        // A /40 IPv6 prefix spans two words.
        #expect(U32Key.ipv6Destination(try IPPrefix("fd00:1122:3344::/40")) == [
            U32Key(mask: 0xffff_ffff, value: 0xfd00_1122, offset: 24), U32Key(mask: 0xff00_0000, value: 0x3300_0000, offset: 28)])
    }
}
