import CNetlink
import Foundation
import Glibc
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverProtection
import QuiverTestSupport
import SystemPackage
import Testing

/// Macvtap VNICs over a real switch, with their queue descriptors held by the test as a guest's
/// qemu would hold them: what the test writes is what a guest sends, what it reads is what a
/// guest gets. e1 (tenant a) and e2 (tenant b) are namespace hosts on the bridge; m1 (tenant a)
/// and m2 (tenant b) are macvtaps over the bridge device.
@Suite(.serialized) struct MacvtapTrafficTests {
    static let table = "quiver-m"
    static let tag = "quiver:m/"

    /// One queue of a macvtap: frames carry a 12-byte virtio-net header (zeros: no offload).
    final class Guest {
        let fd: FileDescriptor
        let mac: MACAddress
        let ip: IPAddress
        init(_ fd: FileDescriptor, mac: MACAddress, ip: IPAddress) {
            self.fd = fd
            self.mac = mac
            self.ip = ip
        }
        deinit { try? fd.close() }

        @discardableResult
        func send(_ frame: [UInt8], count: Int) -> Int {
            let packet = [UInt8](repeating: 0, count: 12) + frame
            var sent = 0
            for _ in 0..<count where (try? packet.withUnsafeBytes { try fd.write($0) }) == packet.count { sent += 1 }
            return sent
        }

        func drain() { _ = count(containing: [1], quietSeconds: 0.05) }

        func count(containing marker: [UInt8], expected: Int = .max, quietSeconds: Double = 0.3) -> Int {
            var seen = 0
            var buf = [UInt8](repeating: 0, count: 65536)
            while seen < expected {
                var p = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, Int32(quietSeconds * 1000)) <= 0 { break }
                let n = read(fd.rawValue, &buf, buf.count)
                if n > 12, Frames.contains(buf[12..<n], marker) { seen += 1 }
            }
            return seen
        }
    }

    struct Lab {
        var fabric: ScratchFabric
        var firewall: Firewall
        var ruleset: Ruleset
        var hosts: [PacketSocket]
        var guests: [Guest]
        func counter(_ name: String) throws -> UInt64 { try firewall.counters(table: MacvtapTrafficTests.table)[name]?.packets ?? 0 }
    }

    func withLab(_ body: (Lab) throws -> Void) throws {
        let f = try ScratchFabric(endpoints: 2, prefix: "qm")
        defer {
            let failed = f.tearDown()
            #expect(failed.isEmpty && f.namespaceNames.isEmpty, "namespaces left: \(f.namespaceNames)")
        }
        let kinds: Set<ProtectionKind> = [.macNospoof, .ipNospoof, .restricted]
        var ports = f.endpoints.enumerated().map { i, e in
            ProtectedPort(device: e.hostDevice.rawValue, tenant: i == 0 ? "a" : "b", mac: e.mac, protection: kinds,
                          allowed: [try! IPPrefix(address: e.ip, length: 32)])
        }
        // The rules go in before the macvtaps exist: netdev chains hook devices by name.
        let guestMACs = [try MACAddress("02:00:00:00:00:21"), try MACAddress("02:00:00:00:00:22")]
        let guestIPs = [try IPAddress("10.55.0.21"), try IPAddress("10.55.0.22")]
        for i in 0..<2 {
            ports.append(ProtectedPort(device: "m\(i + 1)", tenant: i == 0 ? "a" : "b", mac: guestMACs[i], protection: kinds,
                                       allowed: [try IPPrefix(address: guestIPs[i], length: 32)], attachment: .macvtap))
        }
        let ruleset = Ruleset(table: Self.table, ownerTag: Self.tag, ports: ports)
        let firewall = try Firewall(namespace: f.fabric)
        #expect(try firewall.install(ruleset))
        #expect(try firewall.isCurrent(ruleset))
        let br = try f.handle.link(named: "br0").index
        var guests: [Guest] = []
        for i in 0..<2 {
            let name = try InterfaceName(validating: "m\(i + 1)")
            let index = try Macvtap.create(name, lowerIndex: br, LinkSettings(up: true, mac: guestMACs[i]), handle: f.handle)
            // As apply does: the bridge delivers frames for the guest's MAC to its own device.
            try f.handle.perform([BridgeFDBRequest.addLocal(guestMACs[i], bridgeIndex: br, bridgeName: "br0")])
            let fds = try Macvtap.openQueues(ifindex: index, name: name)
            guests.append(Guest(fds[0], mac: guestMACs[i], ip: guestIPs[i]))
        }
        let hosts = try f.endpoints.map { try PacketSocket(in: $0.ns, device: "eth0") }
        try body(Lab(fabric: f, firewall: firewall, ruleset: ruleset, hosts: hosts, guests: guests))
    }

    /// Each open of `/dev/tapN` is a queue with its own virtio-net header size: every queue is
    /// set to 12 bytes (what virtio-net 1.0 uses), not only the first.
    @Test func everyQueueOfAMacvtapGetsTheHeaderSize() throws {
        let f = try ScratchFabric(endpoints: 1, prefix: "qm")
        defer { f.tearDown() }
        let br = try f.handle.link(named: "br0").index
        let name = try InterfaceName(validating: "mq0")
        let index = try Macvtap.create(name, lowerIndex: br, LinkSettings(up: true, txQueues: 4, rxQueues: 4), handle: f.handle)
        let fds = try Macvtap.openQueues(ifindex: index, name: name, TapOptions(queues: 4))
        defer { for fd in fds { try? fd.close() } }
        #expect(fds.count == 4)
        #expect(fds.map { quiver_tun_get_vnet_hdr_size($0.rawValue) } == [12, 12, 12, 12])
        // A descriptor of another device under this index's name is refused.
        #expect(throws: (any Error).self) { _ = try Macvtap.openQueues(ifindex: index, name: try InterfaceName(validating: "other0")) }
    }

    @Test func whatAGuestSendsIsCheckedOnItsMacvtap() throws {
        try withLab { lab in
            let e = lab.fabric.endpoints, m1 = lab.guests[0]
            let n = 200
            let cases: [(String, String, ([UInt8]) -> [UInt8])] = [
                ("forged source MAC", "m1/mac", { Frames.udp4(dstMAC: e[0].mac, srcMAC: try! MACAddress("02:de:ad:be:ef:01"), src: m1.ip, dst: e[0].ip, $0) }),
                ("forged source IPv4", "m1/ip", { Frames.udp4(dstMAC: e[0].mac, srcMAC: m1.mac, src: try! IPAddress("10.55.0.99"), dst: e[0].ip, $0) }),
                ("non-IP ethertype", "m1/restricted", { Frames.raw(dst: e[0].mac, src: m1.mac, type: 0x88B5, $0) }),
            ]
            for (what, counter, frame) in cases {
                let before = try lab.counter(counter)
                let marker = Frames.marker()
                lab.hosts[0].drain()
                #expect(m1.send(frame(marker), count: n) == n)
                let got = lab.hosts[0].count(containing: marker, expected: n)
                #expect(got == 0, "\(what): e1 got \(got)")
                let grew = try lab.counter(counter) - before
                #expect(grew == UInt64(n), "\(what): \(counter) grew by \(grew)")
            }
            // An honest frame reaches the same tenant's host.
            let marker = Frames.marker()
            m1.send(Frames.udp4(dstMAC: e[0].mac, srcMAC: m1.mac, src: m1.ip, dst: e[0].ip, marker), count: n)
            #expect(lab.hosts[0].count(containing: marker, expected: n) == n)
        }
    }

    @Test func tenantsMeetNeitherThroughTheBridgeNorBesideIt() throws {
        try withLab { lab in
            let e = lab.fabric.endpoints, m1 = lab.guests[0], m2 = lab.guests[1]
            let n = 200
            let beforeA = try lab.counter(Ruleset.isolationCounter("a")), beforeB = try lab.counter(Ruleset.isolationCounter("b"))
            // A guest's broadcast: its tenant's host gets it; the other tenant's host (through the
            // bridge) and macvtap (straight across the lower device) do not.
            var marker = Frames.marker()
            m1.send(Frames.udp4(dstMAC: Frames.broadcast, srcMAC: m1.mac, src: m1.ip, dst: try IPAddress("10.55.0.255"), marker), count: n)
            #expect(lab.hosts[0].count(containing: marker, expected: n) == n, "m1 → e1 (tenant a)")
            #expect(lab.hosts[1].count(containing: marker, expected: n) == 0, "m1 → e2 (tenant b)")
            #expect(m2.count(containing: marker, expected: n) == 0, "m1 → m2 (tenant b)")
            // Unicast from a guest to the other tenant's guest.
            marker = Frames.marker()
            m2.drain()
            m1.send(Frames.udp4(dstMAC: m2.mac, srcMAC: m1.mac, src: m1.ip, dst: m2.ip, marker), count: n)
            #expect(m2.count(containing: marker, expected: n) == 0, "m1 → m2 unicast")
            // Hosts towards guests: the same tenant's frames arrive, the other's do not.
            m1.drain()
            marker = Frames.marker()
            lab.hosts[0].send(Frames.udp4(dstMAC: m1.mac, srcMAC: e[0].mac, src: e[0].ip, dst: m1.ip, marker), count: n)
            #expect(m1.count(containing: marker, expected: n) == n, "e1 → m1 (tenant a)")
            marker = Frames.marker()
            lab.hosts[1].send(Frames.udp4(dstMAC: m1.mac, srcMAC: e[1].mac, src: e[1].ip, dst: m1.ip, marker), count: n)
            #expect(m1.count(containing: marker, expected: n) == 0, "e2 → m1 (tenant b)")
            marker = Frames.marker()
            lab.hosts[1].send(Frames.udp4(dstMAC: Frames.broadcast, srcMAC: e[1].mac, src: e[1].ip, dst: try IPAddress("10.55.0.255"), marker), count: n)
            #expect(m1.count(containing: marker, expected: n) == 0, "e2 → m1 broadcast")
            #expect(m2.count(containing: marker, expected: n) == n, "e2 → m2 broadcast (tenant b)")
            // Every blocked frame was counted once per port of the tenant it was headed to; unicast
            // to a guest's MAC is not flooded to the bridge ports (its local fdb entry). Towards
            // a: e2's unicast to m1 (at m1) and e2's broadcast (at m1 and e1): 3n. Towards b:
            // m1's broadcast (at e2 and m2) and m1's unicast to m2: 3n. Background IPv6 chatter
            // of the hosts may add a few.
            let a = try lab.counter(Ruleset.isolationCounter("a")) - beforeA, b = try lab.counter(Ruleset.isolationCounter("b")) - beforeB
            #expect(a >= UInt64(3 * n) && a < UInt64(3 * n + 50), "isolation drops towards a: \(a)")
            #expect(b >= UInt64(3 * n) && b < UInt64(3 * n + 50), "isolation drops towards b: \(b)")
        }
    }

    @Test func bothTablesAreInstalledCheckedAndRemovedTogether() throws {
        try withLab { lab in
            let nft = ["ip", "netns", "exec", lab.fabric.id, "nft"]
            #expect(try !lab.firewall.install(lab.ruleset))
            // The netdev table deleted behind Quiver's back: no longer current; install restores it.
            _ = try witnessText(nft + ["delete", "table", "netdev", Self.table])
            #expect(try !lab.firewall.isCurrent(lab.ruleset))
            #expect(try lab.firewall.install(lab.ruleset))
            #expect(try lab.firewall.isCurrent(lab.ruleset))
            let listed = try witnessText(nft + ["list", "table", "netdev", Self.table])
            #expect(listed.contains("hook egress devices = { m1, m2 }") || listed.contains("hook egress devices = { m2, m1 }"), "\(listed)")
            // Without macvtaps the netdev table goes in the same transaction.
            var bridgeOnly = lab.ruleset
            bridgeOnly.ports.removeAll { $0.attachment == .macvtap }
            #expect(try lab.firewall.install(bridgeOnly))
            #expect(try lab.firewall.handle.nftTable(.netdev, Self.table) == nil)
            #expect(try lab.firewall.isCurrent(bridgeOnly))
            #expect(try lab.firewall.install(lab.ruleset))
            #expect(try lab.firewall.remove(table: Self.table, ownerTag: Self.tag))
            #expect(try lab.firewall.handle.nftTable(.netdev, Self.table) == nil)
            #expect(try lab.firewall.handle.nftTable(.bridge, Self.table) == nil)
        }
    }
}
