import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverProtection
import QuiverTestSupport
import Testing

/// Real frames through a real bridge in namespaces the test owns: e1 and e2 are tenant `a`,
/// e3 is tenant `b`, all on one switch. Forged frames are sent from inside e1's namespace with an
/// AF_PACKET socket; e2 and e3 count what reaches them.
@Suite(.serialized) struct ProtectionTrafficTests {
    static let table = "quiver-t"
    static let tag = "quiver:t/"

    struct Lab {
        var fabric: ScratchFabric
        var firewall: Firewall
        var ruleset: Ruleset
        var sockets: [PacketSocket]
        func counter(_ name: String) throws -> UInt64 {
            try firewall.handle.nftCounters(.bridge, table: Ruleset.table(ruleset))[name]?.packets ?? 0
        }
    }

    func withLab(_ kinds: Set<ProtectionKind> = [.macNospoof, .ipNospoof, .restricted, .dhcpNospoof],
                 _ body: (Lab) throws -> Void) throws {
        let f = try ScratchFabric(endpoints: 3, prefix: "qp")
        defer {
            let failed = f.tearDown()
            #expect(failed.isEmpty && f.namespaceNames.isEmpty, "namespaces left: \(f.namespaceNames)")
        }
        let ports = f.endpoints.enumerated().map { i, e in
            ProtectedPort(device: e.hostDevice.rawValue, tenant: i < 2 ? "a" : "b", mac: e.mac, protection: kinds,
                          allowed: [try! IPPrefix(address: e.ip, length: 32), try! IPPrefix("fd55::\(11 + i)/128")])
        }
        let ruleset = Ruleset(table: Self.table, ownerTag: Self.tag, ports: ports)
        let firewall = try Firewall(namespace: f.fabric)
        #expect(try firewall.install(ruleset))
        let sockets = try f.endpoints.map { try PacketSocket(in: $0.ns, device: "eth0") }
        try body(Lab(fabric: f, firewall: firewall, ruleset: ruleset, sockets: sockets))
    }

    /// Sends `count` copies of `frame(marker)` from e1; returns what e2 and e3 received.
    func send(_ lab: Lab, count: Int = 1000, _ frame: ([UInt8]) -> [UInt8]) -> (e2: Int, e3: Int, sent: Int) {
        let marker = Frames.marker()
        lab.sockets[1].drain()
        lab.sockets[2].drain()
        let sent = lab.sockets[0].send(frame(marker), count: count)
        return (lab.sockets[1].count(containing: marker, expected: count), lab.sockets[2].count(containing: marker, expected: count), sent)
    }

    @Test func everyProtectionKindDropsAndCountsForgedFrames() throws {
        try withLab { lab in
            let e = lab.fabric.endpoints
            let forgedMAC = try MACAddress("02:de:ad:be:ef:01")
            let forgedIP = try IPAddress("10.55.0.99")
            let cases: [(String, String, ([UInt8]) -> [UInt8])] = [
                ("forged source MAC", "e1h/mac", { Frames.udp4(dstMAC: e[1].mac, srcMAC: forgedMAC, src: e[0].ip, dst: e[1].ip, $0) }),
                ("forged source IPv4", "e1h/ip", { Frames.udp4(dstMAC: e[1].mac, srcMAC: e[0].mac, src: forgedIP, dst: e[1].ip, $0) }),
                ("forged source IPv6", "e1h/ip", { Frames.udp6(dstMAC: e[1].mac, srcMAC: e[0].mac, src: try! IPAddress("fd55::99"),
                                                              dst: try! IPAddress("fd55::12"), $0) }),
                ("forged ARP sender IP", "e1h/ip", { Frames.arpRequest(ethernetSource: e[0].mac, senderMAC: e[0].mac, senderIP: forgedIP,
                                                                        target: e[1].ip, marker: $0) }),
                ("forged ARP sender MAC", "e1h/mac", { Frames.arpRequest(ethernetSource: e[0].mac, senderMAC: forgedMAC, senderIP: e[0].ip,
                                                                          target: e[1].ip, marker: $0) }),
                ("non-IP ethertype 0x88b5", "e1h/restricted", { Frames.raw(dst: e[1].mac, src: e[0].mac, type: 0x88B5, $0) }),
                ("DHCP with a foreign chaddr", "e1h/dhcp", { m in
                    var bootp = [UInt8](repeating: 0, count: 240)
                    bootp[0] = 1; bootp[1] = 1; bootp[2] = 6
                    bootp.replaceSubrange(28..<34, with: forgedMAC.bytes)
                    return Frames.udp4(dstMAC: Frames.broadcast, srcMAC: e[0].mac, src: try! IPAddress("0.0.0.0"),
                                       dst: try! IPAddress("255.255.255.255"), srcPort: 68, dstPort: 67, bootp + m)
                }),
            ]
            // Legitimate traffic keeps flowing while the forged frames are sent: UDP round trips
            // e1 → e2 on real sockets, all through the same port and rules.
            let meanwhile = RoundTripsInBackground(UDPRoundTrip(from: e[0].ns, to: e[1].ns, address: e[1].ip, port: 7010,
                                                               count: 400, interval: 0.005))
            for (what, counter, frame) in cases {
                let before = try lab.counter(counter)
                let r = send(lab, frame)
                #expect(r.sent == 1000, "\(what): sent \(r.sent)")
                #expect(r.e2 == 0 && r.e3 == 0, "\(what): delivered e2=\(r.e2) e3=\(r.e3)")
                let grew = try lab.counter(counter) - before
                #expect(grew == 1000, "\(what): counter \(counter) grew by \(grew)")
            }
            let background = try meanwhile.wait()
            #expect(background.lost == 0 && background.rtts.count == 400, "round trips during the forgeries: \(background.lost) lost")
            // Legitimate frames afterwards: the same tenant gets all, the other none.
            let ok = send(lab) { Frames.udp4(dstMAC: e[1].mac, srcMAC: e[0].mac, src: e[0].ip, dst: e[1].ip, $0) }
            #expect(ok.e2 == 1000 && ok.e3 == 0, "legitimate: e2=\(ok.e2) e3=\(ok.e3)")
            let dhcp = send(lab, count: 10) { m in
                var bootp = [UInt8](repeating: 0, count: 240)
                bootp[0] = 1; bootp[1] = 1; bootp[2] = 6
                bootp.replaceSubrange(28..<34, with: e[0].mac.bytes)
                return Frames.udp4(dstMAC: Frames.broadcast, srcMAC: e[0].mac, src: try! IPAddress("0.0.0.0"),
                                   dst: try! IPAddress("255.255.255.255"), srcPort: 68, dstPort: 67, bootp + m)
            }
            #expect(dhcp.e2 == 10 && dhcp.e3 == 0, "honest DHCP discover: e2=\(dhcp.e2) e3=\(dhcp.e3)")
            // And real sockets: a UDP round trip e1 → e2.
            let rt = try UDPRoundTrip(from: e[0].ns, to: e[1].ns, address: e[1].ip, count: 20, interval: 0.001).run()
            #expect(rt.lost == 0)
        }
    }

    @Test func tenantsOnOneSwitchExchangeNoFrameOfAnyKind() throws {
        try withLab { lab in
            let e = lab.fabric.endpoints
            let allNodes = try MACAddress("33:33:00:00:00:01"), mcast4 = try MACAddress("01:00:5e:00:00:fb")
            let before = try lab.counter(Ruleset.isolationCounter("b"))
            let kinds: [(String, ([UInt8]) -> [UInt8], Bool)] = [
                ("unicast to e3", { Frames.udp4(dstMAC: e[2].mac, srcMAC: e[0].mac, src: e[0].ip, dst: e[2].ip, $0) }, false),
                ("broadcast", { Frames.udp4(dstMAC: Frames.broadcast, srcMAC: e[0].mac, src: e[0].ip, dst: try! IPAddress("10.55.0.255"), $0) }, true),
                ("ARP who-has e3", { Frames.arpRequest(ethernetSource: e[0].mac, senderMAC: e[0].mac, senderIP: e[0].ip, target: e[2].ip, marker: $0) }, true),
                ("IPv6 all-nodes multicast", { Frames.udp6(dstMAC: allNodes, srcMAC: e[0].mac, src: try! IPAddress("fd55::11"),
                                                           dst: try! IPAddress("ff02::1"), $0) }, true),
                ("IPv4 multicast", { Frames.udp4(dstMAC: mcast4, srcMAC: e[0].mac, src: e[0].ip, dst: try! IPAddress("224.0.0.251"), $0) }, true),
            ]
            for (what, frame, sameTenantSees) in kinds {
                let r = send(lab, count: 200, frame)
                #expect(r.e3 == 0, "\(what) crossed to tenant b: \(r.e3)")
                if sameTenantSees { #expect(r.e2 == 200, "\(what) to the same tenant: \(r.e2)") }
            }
            // The forward hook runs once per output port: each frame above was headed to e3's port once
            // (unicast to an unlearned MAC floods too). The endpoints' own IPv6 chatter (router
            // solicitations, MLD reports) may add a few more.
            let dropped = try lab.counter(Ruleset.isolationCounter("b")) - before
            #expect(dropped >= 5 * 200 && dropped < 5 * 200 + 100, "isolation counter of b grew by \(dropped)")
            // And the other way: b → a.
            let marker = Frames.marker()
            lab.sockets[0].drain()
            lab.sockets[2].send(Frames.udp4(dstMAC: Frames.broadcast, srcMAC: e[2].mac, src: e[2].ip, dst: try IPAddress("10.55.0.255"), marker), count: 100)
            #expect(lab.sockets[0].count(containing: marker) == 0)
            // A real socket too: e1 cannot reach e3 (ARP never crosses).
            let rt = try UDPRoundTrip(from: e[0].ns, to: e[2].ns, address: e[2].ip, count: 3, interval: 0.01).run()
            #expect(rt.lost == 3)
        }
    }

    @Test func reinstallKeepsOneCopyAndRemoveLeavesNothing() throws {
        try withLab { lab in
            let nft = ["ip", "netns", "exec", lab.fabric.id, "nft"]
            // Same ruleset: nothing sent, counters kept.
            lab.sockets[0].send(Frames.raw(dst: Frames.broadcast, src: lab.fabric.endpoints[0].mac, type: 0x88B5, []), count: 7)
            #expect(try !lab.firewall.install(lab.ruleset))
            #expect(try lab.counter("e1h/restricted") == 7)
            let rules = try nftRules(nft)
            #expect(rules == lab.ruleset.body().filter { $0.context.operation == "create nftables rule" }.count)
            // Changed ruleset: replaced in one transaction, still one copy of each rule.
            var changed = lab.ruleset
            changed.ports[0].allowed.append(try IPPrefix("10.66.0.0/16"))
            #expect(try lab.firewall.install(changed))
            // One more allowed prefix: one more rule in the IPv4 chain and one in the ARP chain.
            #expect(try nftRules(nft) == rules + 2)
            #expect(try lab.firewall.isCurrent(changed))
            // The table deleted behind Quiver's back: no longer current, and install puts it back.
            _ = try witnessText(nft + ["delete", "table", "bridge", Self.table])
            #expect(try !lab.firewall.isCurrent(changed))
            #expect(try lab.firewall.install(changed))
            #expect(try nftRules(nft) == rules + 2)
            #expect(try lab.firewall.remove(table: Self.table, ownerTag: Self.tag))
            #expect(try lab.firewall.handle.nftTable(.bridge, Self.table) == nil)
            #expect(try !lab.firewall.remove(table: Self.table, ownerTag: Self.tag))
        }
    }

    @Test func foreignTableOfTheSameNameIsNeverTouched() throws {
        let f = try ScratchFabric(endpoints: 1, prefix: "qp")
        defer { f.tearDown() }
        let nft = ["ip", "netns", "exec", f.id, "nft"]
        _ = try witnessText(nft + ["add", "table", "bridge", Self.table])
        _ = try witnessText(nft + ["add", "chain", "bridge", Self.table, "mine"])
        // And an unrelated table with a counter that must come through untouched.
        _ = try witnessText(nft + ["add", "table", "inet", "other"])
        _ = try witnessText(nft + ["add", "counter", "inet", "other", "c", "{", "packets", "5", "bytes", "500", "}"])
        let fw = try Firewall(namespace: f.fabric)
        let r = Ruleset(table: Self.table, ownerTag: Self.tag, ports: [
            ProtectedPort(device: "e1h", tenant: "a", mac: f.endpoints[0].mac, protection: [.macNospoof], allowed: []),
        ])
        #expect(throws: ForeignTableError.self) { try fw.install(r) }
        #expect(throws: ForeignTableError.self) { try fw.remove(table: Self.table, ownerTag: Self.tag) }
        #expect(try witnessText(nft + ["list", "chain", "bridge", Self.table, "mine"]).contains("mine"))
        // A differently named Quiver table comes and goes beside both.
        let mine = Ruleset(table: "quiver-u", ownerTag: "quiver:u/", ports: r.ports)
        #expect(try fw.install(mine))
        #expect(try fw.remove(table: "quiver-u", ownerTag: "quiver:u/"))
        #expect(try witnessText(nft + ["list", "counter", "inet", "other", "c"]).contains("packets 5 bytes 500"))
        #expect(try witnessText(nft + ["list", "tables"]).contains("table bridge \(Self.table)"))
    }

    func nftRules(_ nft: [String]) throws -> Int {
        let json = try JSONSerialization.jsonObject(with: Data(try witnessText(nft + ["-j", "list", "table", "bridge", Self.table]).utf8))
        let items = (json as? [String: Any])?["nftables"] as? [[String: Any]] ?? []
        return items.filter { $0["rule"] != nil }.count
    }

}

/// A UDP round-trip run on its own thread.
final class RoundTripsInBackground: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<UDPRoundTrip.Result, Error>?

    init(_ probe: UDPRoundTrip) {
        Thread { [self] in
            result = Result { try probe.run() }
            done.signal()
        }.start()
    }

    func wait() throws -> UDPRoundTrip.Result {
        done.wait()
        return try result!.get()
    }
}

extension Ruleset {
    static func table(_ r: Ruleset) -> String { r.table }
}
