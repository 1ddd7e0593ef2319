import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverProtection
import QuiverTestSupport
import Testing

/// IPv6 neighbour discovery under link protection, with real frames through a real bridge in
/// namespaces the test owns: e1 and e2 are tenant `a`, e3 is tenant `b`, all on one switch with
/// every protection kind. Forged frames go out of e1's namespace on an AF_PACKET socket; e2 and
/// e3 count what reaches them, and each forgery must land in exactly the counter it belongs to.
@Suite(.serialized) struct NeighbourDiscoveryTrafficTests {
    static let table = "quiver-nd"

    struct Lab {
        var fabric: ScratchFabric
        var firewall: Firewall
        var sockets: [PacketSocket]
        func counters() throws -> [String: UInt64] {
            try firewall.handle.nftCounters(.bridge, table: NeighbourDiscoveryTrafficTests.table).mapValues(\.packets)
        }
    }

    /// `extraAllowed[i]`: IPv6 prefixes endpoint i may use besides its own `fd55::1N/128`.
    /// `ipv4Only`: e1 speaks no IPv6 (no IPv6 address allowed, no link-local one).
    func withLab(extraAllowed: [[IPPrefix]] = [[], [], []], ipv4Only: Bool = false, _ body: (Lab) throws -> Void) throws {
        let f = try ScratchFabric(endpoints: 3, prefix: "qn")
        defer {
            let failed = f.tearDown()
            #expect(failed.isEmpty && f.namespaceNames.isEmpty, "namespaces left: \(f.namespaceNames)")
        }
        let ports = f.endpoints.enumerated().map { i, e in
            i == 0 && ipv4Only
                ? ProtectedPort(device: e.hostDevice.rawValue, tenant: "a", mac: e.mac, protection: Set(ProtectionKind.allCases),
                                allowed: [try! IPPrefix(address: e.ip, length: 32)], ipv6: false)
                : ProtectedPort(device: e.hostDevice.rawValue, tenant: i < 2 ? "a" : "b", mac: e.mac, protection: Set(ProtectionKind.allCases),
                                allowed: [try! IPPrefix(address: e.ip, length: 32), try! IPPrefix("fd55::\(11 + i)/128")] + extraAllowed[i])
        }
        let firewall = try Firewall(namespace: f.fabric)
        #expect(try firewall.install(Ruleset(table: Self.table, ownerTag: "quiver:nd/", ports: ports)))
        let sockets = try f.endpoints.map { try PacketSocket(in: $0.ns, device: "eth0") }
        try body(Lab(fabric: f, firewall: firewall, sockets: sockets))
    }

    /// Sends `count` copies of `frame(flowLabel)` from e1; returns what e2 and e3 received (told
    /// apart by the frame's IPv6 header, with a random flow label) and how each counter grew.
    func send(_ lab: Lab, count: Int = 200, _ frame: (UInt32) -> [UInt8]) throws -> (e2: Int, e3: Int, grew: [String: UInt64]) {
        let bytes = frame(Frames.flowLabel())
        let marker = Frames.ipv6Header(of: bytes)
        lab.sockets[1].drain()
        lab.sockets[2].drain()
        let before = try lab.counters()
        let sent = lab.sockets[0].send(bytes, count: count)
        #expect(sent == count, "sent \(sent) of \(count)")
        let e2 = lab.sockets[1].count(containing: marker, expected: count)
        let e3 = lab.sockets[2].count(containing: marker, expected: count)
        let after = try lab.counters()
        var grew: [String: UInt64] = [:]
        // Protection counters only: the endpoints' own multicast (router solicitations, MLD)
        // reaches the other tenant's port now and then and is counted there as isolation.
        for (k, v) in after where v != before[k] ?? 0 && !k.hasPrefix("tenant/") { grew[k] = v - (before[k] ?? 0) }
        return (e2, e3, grew)
    }

    @Test func forgedNeighbourDiscoveryIsDroppedAndCounted() throws {
        try withLab { lab in
            let e = lab.fabric.endpoints
            let me = try IPAddress("fd55::11"), peer = try IPAddress("fd55::12")
            let myLL = ProtectedPort(device: "", tenant: "", mac: e[0].mac, protection: [], allowed: []).linkLocal
            let forged = try MACAddress("02:de:ad:be:ef:07")
            let unspecified = try IPAddress("::")
            let sll = Frames.linkLayerOption(1, e[0].mac), tll = Frames.linkLayerOption(2, e[0].mac)
            let cases: [(String, String, (UInt32) -> [UInt8])] = [
                ("NA claiming e2's address", "e1h/ip", { Frames.neighbourAdvertisement(dstMAC: e[1].mac, srcMAC: e[0].mac, src: me, dst: peer,
                                                                                      target: peer, options: tll, flowLabel: $0) }),
                ("NA for e1's own address with a foreign target link-layer address", "e1h/mac", {
                    Frames.neighbourAdvertisement(dstMAC: e[1].mac, srcMAC: e[0].mac, src: me, dst: peer, target: me,
                                                  options: Frames.linkLayerOption(2, forged), flowLabel: $0) }),
                ("NS with a foreign source link-layer address", "e1h/mac", {
                    Frames.neighbourSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: me, dst: peer, target: peer,
                                                 options: Frames.linkLayerOption(1, forged), flowLabel: $0) }),
                ("NS with the foreign address in its second option", "e1h/mac", {
                    Frames.neighbourSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: me, dst: peer, target: peer,
                                                 options: Frames.nonceOption() + Frames.linkLayerOption(1, forged), flowLabel: $0) }),
                ("NS with more options than Quiver reads", "e1h/mac", {
                    Frames.neighbourSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: me, dst: peer, target: peer,
                                                 options: sll + Frames.nonceOption() + [200, 1, 0, 0, 0, 0, 0, 0], flowLabel: $0) }),
                ("RS with a foreign source link-layer address", "e1h/mac", {
                    Frames.routerSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: myLL, options: Frames.linkLayerOption(1, forged), flowLabel: $0) }),
                ("RA with a foreign source link-layer address after a prefix", "e1h/mac", {
                    Frames.routerAdvertisement(dstMAC: e[1].mac, srcMAC: e[0].mac, src: myLL,
                                               options: Frames.prefixOption(try! IPAddress("fd55::")) + Frames.linkLayerOption(1, forged), flowLabel: $0) }),
                ("redirect", "e1h/ip", { Frames.redirect(dstMAC: e[1].mac, srcMAC: e[0].mac, src: myLL, dst: peer, target: myLL,
                                                         destination: try! IPAddress("fd99::1"), options: [], flowLabel: $0) }),
                ("UDP from ::", "e1h/ip", { Frames.udp6(dstMAC: e[1].mac, srcMAC: e[0].mac, src: unspecified, dst: peer, flowLabel: $0, []) }),
                ("NA from ::", "e1h/ip", { Frames.neighbourAdvertisement(dstMAC: e[1].mac, srcMAC: e[0].mac, src: unspecified, dst: peer,
                                                                        target: me, options: [], flowLabel: $0) }),
                ("NS from :: that is not e1's own DAD (target e2's address)", "e1h/ip", {
                    Frames.neighbourSolicitation(dstMAC: Frames.multicastMAC(Frames.solicitedNode(peer)), srcMAC: e[0].mac, src: unspecified,
                                                 dst: Frames.solicitedNode(peer), target: peer, options: Frames.nonceOption(), flowLabel: $0) }),
                ("RS from ::", "e1h/ip", { Frames.routerSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: unspecified, options: [], flowLabel: $0) }),
            ]
            for (what, counter, frame) in cases {
                let r = try send(lab, frame)
                #expect(r.e2 == 0 && r.e3 == 0, "\(what): delivered e2=\(r.e2) e3=\(r.e3)")
                #expect(r.grew == [counter: 200], "\(what): counters grew \(r.grew), want \(counter) +200")
            }

            // The honest ones reach e2 (unicast to its MAC, so e3 never sees them) and no counter moves.
            let honest: [(String, (UInt32) -> [UInt8])] = [
                ("DAD NS for e1's own address", { Frames.neighbourSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: unspecified,
                                                                             dst: Frames.solicitedNode(me), target: me,
                                                                             options: Frames.nonceOption(), flowLabel: $0) }),
                ("MLDv2 report from ::", { Frames.mldv2Report(dstMAC: e[1].mac, srcMAC: e[0].mac, src: unspecified, flowLabel: $0) }),
                ("NS with e1's own source link-layer address", { Frames.neighbourSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: me, dst: peer,
                                                                                            target: peer, options: sll, flowLabel: $0) }),
                ("NS with its own address and a nonce", { Frames.neighbourSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: myLL, dst: peer,
                                                                                     target: peer, options: sll + Frames.nonceOption(), flowLabel: $0) }),
                ("NA for e1's own address", { Frames.neighbourAdvertisement(dstMAC: e[1].mac, srcMAC: e[0].mac, src: me, dst: peer, target: me,
                                                                           options: tll, flowLabel: $0) }),
                ("NA for e1's link-local address", { Frames.neighbourAdvertisement(dstMAC: e[1].mac, srcMAC: e[0].mac, src: myLL, dst: peer,
                                                                                  target: myLL, options: tll, flowLabel: $0) }),
                ("RS with its own source link-layer address", { Frames.routerSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: myLL,
                                                                                        options: sll, flowLabel: $0) }),
                ("RA with its own source link-layer address after a prefix", {
                    Frames.routerAdvertisement(dstMAC: e[1].mac, srcMAC: e[0].mac, src: myLL,
                                               options: Frames.prefixOption(try! IPAddress("fd55::")) + sll, flowLabel: $0) }),
            ]
            for (what, frame) in honest {
                let r = try send(lab, count: 20, frame)
                #expect(r.e2 == 20 && r.e3 == 0, "\(what): e2=\(r.e2) e3=\(r.e3) grew \(r.grew)")
                #expect(r.grew.filter { $0.key.hasPrefix("e1h/") }.isEmpty, "\(what): counters grew \(r.grew)")
            }
        }
    }

    /// A VNIC that speaks no IPv6 (an IPv4-only namespace host without a link-local address)
    /// sends none: not from its link-local address, not a DAD solicitation from `::` — one rule
    /// instead of the neighbour discovery checks.
    @Test func anIPv4OnlyVNICSendsNoIPv6() throws {
        try withLab(ipv4Only: true) { lab in
            let e = lab.fabric.endpoints
            let myLL = ProtectedPort(device: "", tenant: "", mac: e[0].mac, protection: [], allowed: []).linkLocal
            // An IPv4-only endpoint's kernel sends no IPv6 of its own (Quiver makes it without a
            // link-local address); the scratch fabric's endpoints came up with one, so e1's IPv6
            // is turned off here and its last reports are let through before counting.
            _ = try witnessText(["ip", "netns", "exec", e[0].ns.name!, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"])
            Thread.sleep(forTimeInterval: 1)
            let peer = try IPAddress("fd55::12")
            let frames: [(String, (UInt32) -> [UInt8])] = [
                ("UDP from its link-local address", { Frames.udp6(dstMAC: e[1].mac, srcMAC: e[0].mac, src: myLL, dst: peer, flowLabel: $0, []) }),
                ("DAD NS for its link-local address", { Frames.neighbourSolicitation(dstMAC: e[1].mac, srcMAC: e[0].mac, src: try! IPAddress("::"),
                                                                                   dst: Frames.solicitedNode(myLL), target: myLL,
                                                                                   options: Frames.nonceOption(), flowLabel: $0) }),
            ]
            for (what, frame) in frames {
                let r = try send(lab, frame)
                #expect(r.e2 == 0 && r.e3 == 0, "\(what): delivered e2=\(r.e2) e3=\(r.e3)")
                #expect(r.grew == ["e1h/ip": 200], "\(what): counters grew \(r.grew)")
            }
            // IPv4 still flows.
            let marker = Frames.marker()
            lab.sockets[1].drain()
            lab.sockets[0].send(Frames.udp4(dstMAC: e[1].mac, srcMAC: e[0].mac, src: e[0].ip, dst: e[1].ip, marker), count: 20)
            #expect(lab.sockets[1].count(containing: marker, expected: 20) == 20)
        }
    }

    /// The kernel's own neighbour discovery keeps working under the rules: duplicate address
    /// detection still finds a duplicate of an address the VNIC may use (its DAD solicitation from
    /// `::` passes, and so does the owner's answer), and ping6 between two hosts of one tenant
    /// resolves and answers. An address it may not use never gets that far.
    @Test func duplicateAddressDetectionAndPing6StillWork() throws {
        // e2 may also use fd55::11 (as a shared service address may move between hosts).
        try withLab(extraAllowed: [[], [try IPPrefix("fd55::11/128"), try IPPrefix("fd55::99/128")], []]) { lab in
            let e = lab.fabric.endpoints
            func address(_ i: Int, _ text: String) throws -> Address? {
                let p = try IPPrefix(text)
                let index = try e[i].handle.link(named: "eth0").index
                return try e[i].handle.addresses().first { $0.prefix == p && $0.linkIndex == index }
            }
            func settled(_ i: Int, _ text: String) throws -> Address? {
                let deadline = Date().addingTimeInterval(10)
                while Date() < deadline {
                    if let a = try address(i, text), !a.isTentative || a.isDuplicate { return a }
                    Thread.sleep(forTimeInterval: 0.1)
                }
                return try address(i, text)
            }
            // Each endpoint's own address first: DAD passes (nobody else has it).
            try e[0].handle.addAddress(try IPPrefix("fd55::11/64"), to: "eth0", duplicateAddressDetection: true)
            try e[1].handle.addAddress(try IPPrefix("fd55::12/64"), to: "eth0", duplicateAddressDetection: true)
            let own1 = try #require(try settled(0, "fd55::11/64")), own2 = try #require(try settled(1, "fd55::12/64"))
            #expect(!own1.isDuplicate && !own2.isDuplicate)
            // ping6 both ways: solicitations and advertisements with link-layer options, through the rules.
            #expect(try Reach.icmpEcho(from: e[0].ns, to: try IPAddress("fd55::12"), timeout: 1).answered)
            #expect(try Reach.icmpEcho(from: e[1].ns, to: try IPAddress("fd55::11"), timeout: 1).answered)
            // Not across tenants.
            try e[2].handle.addAddress(try IPPrefix("fd55::13/64"), to: "eth0", duplicateAddressDetection: true)
            _ = try settled(2, "fd55::13/64")
            #expect(try !Reach.icmpEcho(from: e[0].ns, to: try IPAddress("fd55::13"), count: 2, timeout: 0.5).answered)

            // e2 takes fd55::11 too, which e1 already has: e2's DAD solicitation (from ::, target an
            // address e2 may use) reaches e1, e1's answer reaches e2, and e2 marks it a duplicate.
            try e[1].handle.addAddress(try IPPrefix("fd55::11/64"), to: "eth0", duplicateAddressDetection: true)
            let dup = try #require(try settled(1, "fd55::11/64"))
            #expect(dup.isDuplicate, "duplicate address detection found e1's fd55::11: flags \(String(dup.flags, radix: 16))")

            // An address e1 may not use: its DAD solicitation is dropped (and counted), so it
            // never learns that e2 has it — and nothing it sends from it gets out anyway.
            try e[1].handle.addAddress(try IPPrefix("fd55::99/64"), to: "eth0", duplicateAddressDetection: true)
            _ = try settled(1, "fd55::99/64")
            let before = try lab.counters()["e1h/ip"] ?? 0
            try e[0].handle.addAddress(try IPPrefix("fd55::99/64"), to: "eth0", duplicateAddressDetection: true)
            let stray = try #require(try settled(0, "fd55::99/64"))
            #expect(!stray.isDuplicate)
            #expect((try lab.counters()["e1h/ip"] ?? 0) > before, "e1's DAD solicitation for fd55::99 was dropped and counted")
        }
    }
}
