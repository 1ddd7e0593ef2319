import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink
import Testing

/// Privileged: real links in namespaces the tests create and delete. Witness: iproute2 JSON.
@Suite struct LinkTests {
    @Test func bridgeCreateReadChangeDelete() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("br-test0", Bridge(stp: false), LinkSettings(up: true, mtu: 1400, group: 42, alias: "quiver:t/br"))
            let l = try h.link(named: "br-test0")
            #expect(l.kind == "bridge")
            #expect(l.linkClass == "bridge")
            #expect(l.mtu == 1400)
            #expect(l.isUp)
            #expect(l.group == 42)
            #expect(l.alias == "quiver:t/br")
            #expect(l.data == .bridge(Bridge(stp: false, ageingTime: l.data.flatMap { if case .bridge(let b) = $0 { b.ageingTime } else { nil } })))

            var w = try ipLinks(ns)["br-test0"]!
            #expect(w["mtu"] as? Int == 1400)
            #expect(w["group"] as? String == "42")
            #expect(w["ifalias"] as? String == "quiver:t/br")
            #expect((w["flags"] as? [String])?.contains("UP") == true)
            #expect(w.dict("linkinfo")?["info_kind"] as? String == "bridge")

            let mac = try MACAddress("02:11:22:33:44:55")
            try h.setLink("br-test0", LinkSettings(up: false, mtu: 1300, mac: mac, alias: "changed"))
            let l2 = try h.link(named: "br-test0")
            #expect(l2.mtu == 1300)
            #expect(!l2.isUp)
            #expect(l2.mac == mac)
            #expect(l2.alias == "changed")
            w = try ipLinks(ns)["br-test0"]!
            #expect(w["address"] as? String == "02:11:22:33:44:55")
            #expect(w["mtu"] as? Int == 1300)

            try h.deleteLink("br-test0")
            #expect(try h.linkIfPresent(named: "br-test0") == nil)
            #expect(try ipLinks(ns)["br-test0"] == nil)
        }
    }

    @Test func vethPeerCreatedDirectlyInAnotherNamespace() throws {
        try withTwoScratchNamespaces { nsA, a, nsB, b in
            let fd = try nsB.open()
            defer { try? fd.close() }
            let peerMAC = try MACAddress("02:00:00:00:00:02")
            let veth = Veth(peer: "vb", peerSettings: LinkSettings(up: true, mac: peerMAC, namespace: .fd(fd.rawValue)))
            try a.addLink("va", veth, LinkSettings(up: true))
            // The peer is brought up by its own namespace's handle.
            try b.perform(try #require(veth.peerFollowUp))
            let va = try a.link(named: "va")
            #expect(va.kind == "veth")
            #expect(va.linkNetnsID != nil, "peer lives in another namespace")
            #expect(try a.linkIfPresent(named: "vb") == nil)
            let vb = try b.link(named: "vb")
            #expect(vb.mac == peerMAC)
            #expect(vb.isUp)
            #expect(vb.linkIndex == va.index)
            #expect(try ipLinks(nsB)["vb"]?["address"] as? String == "02:00:00:00:00:02")
            #expect(try ipLinks(nsA)["va"]?.dict("linkinfo")?["info_kind"] as? String == "veth")

            // Deleting one end removes the pair.
            try a.deleteLink("va")
            #expect(try b.linkIfPresent(named: "vb") == nil)
        }
    }

    @Test func moveALinkToAnotherNamespace() throws {
        try withTwoScratchNamespaces { _, a, nsB, b in
            try a.addLink("mv0", Veth(peer: "mv0p"))
            let fd = try nsB.open()
            defer { try? fd.close() }
            try a.setLink("mv0", LinkSettings(namespace: .fd(fd.rawValue)))
            #expect(try a.linkIfPresent(named: "mv0") == nil)
            #expect(try b.link(named: "mv0").kind == "veth")
            #expect(try ipLinks(nsB)["mv0"] != nil)
        }
    }

    @Test func bridgePortFlagsAndMaster() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("br0", Bridge(), LinkSettings(up: true))
            let br = try h.link(named: "br0")
            try h.addLink("p0", Veth(peer: "p0-peer"), LinkSettings(up: true, masterIndex: br.index))
            #expect(try h.link(named: "p0").masterIndex == br.index)
            try h.setBridgePort("p0", BridgePortFlags(isolated: true, learning: false, flood: false, hairpin: true))

            let port = try h.link(named: "p0")
            #expect(port.portKind == "bridge")
            #expect(port.bridgePort?.isolated == true)
            #expect(port.bridgePort?.learning == false)
            #expect(port.bridgePort?.flood == false)
            #expect(port.bridgePort?.hairpin == true)

            let bridgeLinks = try witness(["bridge", "-n", ns.name!, "-j", "-d", "link", "show", "dev", "p0"]) as? [[String: Any]]
            let w = try #require(bridgeLinks?.first)
            #expect(w["isolated"] as? Bool == true)
            #expect(w["learning"] as? Bool == false)
            #expect(w["flood"] as? Bool == false)
            #expect(w["hairpin"] as? Bool == true)
            #expect(w["master"] as? String == "br0")

            // Release from the bridge.
            try h.setLink("p0", LinkSettings(masterIndex: 0))
            #expect(try h.link(named: "p0").masterIndex == nil)
        }
    }

    @Test func ifbAndVxlan() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("ifb-test", IFB(), LinkSettings(up: true))
            #expect(try h.link(named: "ifb-test").linkClass == "ifb")
            #expect(try ipLinks(ns)["ifb-test"]?.dict("linkinfo")?["info_kind"] as? String == "ifb")

            let vx = Vxlan(vni: 4242, local: try IPAddress("192.0.2.1"), remote: try IPAddress("192.0.2.2"), port: 4790)
            try h.addLink("vx0", vx)
            let l = try h.link(named: "vx0")
            guard case .vxlan(let got)? = l.data else { Issue.record("not vxlan: \(String(describing: l.data))"); return }
            #expect(got.vni == 4242)
            #expect(got.local == vx.local)
            #expect(got.remote == vx.remote)
            #expect(got.port == 4790)
            let data = try #require(ipLinks(ns)["vx0"]?.dict("linkinfo")?.dict("info_data"))
            #expect(data["id"] as? Int == 4242)
            #expect(data["remote"] as? String == "192.0.2.2")
            #expect(data["local"] as? String == "192.0.2.1")
            #expect(data["port"] as? Int == 4790)
            try h.deleteLink("vx0")
            try h.deleteLink("ifb-test")
            #expect(try ipLinks(ns).keys.sorted() == ["lo"])
        }
    }

    @Test func vxlanWithMulticastGroupOverALowerLink() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("under0", Veth(peer: "under0p"), LinkSettings(up: true))
            let lower = try h.link(named: "under0").index
            try h.addLink("vxm0", Vxlan(vni: 77, remote: try IPAddress("239.1.1.1"), port: nil, lowerIndex: lower))
            guard case .vxlan(let got)? = try h.link(named: "vxm0").data else { Issue.record("not vxlan"); return }
            #expect(got.remote == (try IPAddress("239.1.1.1")))
            #expect(got.lowerIndex == lower)
            let data = try #require(ipLinks(ns)["vxm0"]?.dict("linkinfo")?.dict("info_data"))
            #expect(data["group"] as? String == "239.1.1.1")
            #expect(data["link"] as? String == "under0")
        }
    }

    @Test func groupDeleteRemovesManyInOneRequest() throws {
        try withScratchNamespace { ns, h in
            var requests: [NetlinkRequest] = []
            for i in 0..<50 {
                requests += LinkRequest.add(try InterfaceName(validating: "g\(i)"), Veth(peer: try InterfaceName(validating: "g\(i)p"), peerSettings: LinkSettings(group: 7)),
                                            LinkSettings(group: 7))
            }
            try h.perform(requests)
            #expect(try h.links().filter { $0.group == 7 }.count == 100)
            #expect(try h.deleteLinks(group: 7))
            #expect(try h.links().filter { $0.group == 7 }.isEmpty)
            #expect(try ipLinks(ns).keys.sorted() == ["lo"])
            // An empty group is not an error, group 0 is refused.
            #expect(try h.deleteLinks(group: 7) == false)
            #expect(throws: InvalidValue.self) { try h.deleteLinks(group: 0) }
        }
    }

    @Test func typedErrors() throws {
        try withScratchNamespace { _, h in
            try h.addLink("dup0", Bridge())
            let exists = #expect(throws: NetlinkError.self) { try h.addLink("dup0", Bridge()) }
            #expect(exists?.errno == .fileExists)
            #expect(exists?.description.contains("create bridge link dup0") == true)
            #expect(exists?.description.contains("EEXIST") == true)
            #expect(exists?.description.contains("already exists") == true)

            // Every way of sending the request gives the same error, with the same meaning.
            let batch = #expect(throws: NetlinkError.self) { try h.perform(LinkRequest.add("dup0", Bridge())) }
            let single = #expect(throws: NetlinkError.self) { try h.perform(LinkRequest.add("dup0", Bridge())[0]) }
            #expect(batch == exists && single == exists, "\(String(describing: batch)) / \(String(describing: single))")
            #expect(exists?.hint?.hasPrefix("link dup0 already exists in the netns ") == true, "\(String(describing: exists))")

            let missing = #expect(throws: NetlinkError.self) { try h.link(named: "nope0") }
            #expect(missing?.hint?.hasPrefix("link nope0 not found in the netns ") == true, "\(String(describing: missing))")
            #expect(missing?.errno == .noSuchDevice)
            #expect(missing?.description.contains("ENODEV") == true)
            let missingDelete = #expect(throws: NetlinkError.self) { try h.deleteLink("nope0") }
            #expect(missingDelete?.errno == .noSuchDevice)

            // The kernel explains an EINVAL in its extended ACK.
            try h.addLink("mtu0", Veth(peer: "mtu0p"))
            let invalid = #expect(throws: NetlinkError.self) { try h.setLink("mtu0", LinkSettings(mtu: 100_000)) }
            #expect(invalid?.errno == .invalidArgument)
            #expect(invalid?.kernelMessage?.isEmpty == false, "extended ACK text expected")

            // A batch: one failure does not stop the rest, and each gets its own result.
            let results = h.socket.execute(LinkRequest.add("b1", Bridge()) + LinkRequest.add("dup0", Bridge()) + LinkRequest.add("b2", Bridge()))
            #expect((try? results[0].get()) != nil)
            #expect((try? results[1].get()) == nil)
            #expect((try? results[2].get()) != nil)
        }
    }

    @Test func fifteenByteNamesWorkSixteenAreRefused() throws {
        try withScratchNamespace { ns, h in
            let fifteen = try InterfaceName(validating: "abcdefghijklmno")
            try h.addLink(fifteen, Bridge())
            #expect(try h.link(named: fifteen).name == "abcdefghijklmno")
            #expect(try ipLinks(ns)["abcdefghijklmno"] != nil)
            let e = #expect(throws: InvalidValue.self) { try InterfaceName(validating: "abcdefghijklmnop") }
            #expect(e?.description.contains("16 bytes") == true)
            #expect(throws: InvalidValue.self) { try InterfaceName(validating: "") }
            #expect(throws: InvalidValue.self) { try InterfaceName(validating: "a/b") }
            #expect(throws: InvalidValue.self) { try InterfaceName(validating: "a b") }
            #expect(throws: InvalidValue.self) { try InterfaceName(validating: "a:b") }
        }
    }

    @Test func statisticsCountPacketsBothWays() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("st0", Veth(peer: "st1", peerSettings: LinkSettings(up: true)), LinkSettings(up: true))
            let before = try #require(try h.link(named: "st0").statistics)
            // Send a few frames out of st0 with a packet socket inside the namespace.
            let sent = try ns.run { () -> Int in
                let fd = socket(AF_PACKET, Int32(SOCK_RAW.rawValue), 0)
                guard fd >= 0 else { return -1 }
                defer { close(fd) }
                var addr = sockaddr_ll()
                addr.sll_family = UInt16(AF_PACKET)
                addr.sll_ifindex = Int32(if_nametoindex("st0"))
                addr.sll_halen = 6
                var frame = [UInt8](repeating: 0xff, count: 6) + [0x02, 0, 0, 0, 0, 1] + [0x88, 0xb5] + [UInt8](repeating: 0, count: 46)
                var count = 0
                for _ in 0..<10 {
                    let n = withUnsafePointer(to: &addr) { p in
                        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                            sendto(fd, &frame, frame.count, 0, sa, socklen_t(MemoryLayout<sockaddr_ll>.size))
                        }
                    }
                    if n == frame.count { count += 1 }
                }
                return count
            }
            #expect(sent == 10)
            let after = try #require(try h.link(named: "st0").statistics)
            // Our 10 frames of 60 bytes, plus at most a few IPv6 autoconfiguration frames the
            // kernel sends on its own right after the link came up.
            #expect((10...14).contains(after.txPackets - before.txPackets))
            #expect(after.txBytes - before.txBytes >= 600)
            let peer = try #require(try h.links().first { $0.name == "st1" }?.statistics)
            #expect(peer.rxPackets >= 10)
        }
    }
}

/// Privileged: namespaces made in one batch (their mount points are hard links to one file until
/// mounted) are distinct namespaces; a batch with a taken name changes nothing.
@Suite struct NamespaceBatchTests {
    func inode(_ path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
    }

    @Test func namespacesMadeInOneBatchAreDistinctAndAFailedBatchLeavesNothing() throws {
        let base = "qtb-" + String(UUID().uuidString.prefix(6)).lowercased()
        let names = (0..<3).map { "\(base)-\($0)" }
        try NetworkNamespace.create(named: names)
        defer { for n in names { try? NetworkNamespace.delete(named: n) } }
        let inodes = names.compactMap { inode(NetworkNamespace.named($0).path) }
        #expect(Set(inodes).count == 3, "three namespaces, not one seen three times: \(inodes)")
        let h0 = try NetlinkHandle(namespace: .named(names[0]))
        try h0.addLink("x0", Veth(peer: "x1"))
        #expect(try NetlinkHandle(namespace: .named(names[1])).links().map(\.name) == ["lo"])
        #expect(try h0.links().count == 3)

        let taken = ["\(base)-a", names[1], "\(base)-b"]
        let e = #expect(throws: SystemCallError.self) { try NetworkNamespace.create(named: taken) }
        #expect(e?.errno == .fileExists)
        #expect(!NetworkNamespace.listNamed().contains("\(base)-a") && !NetworkNamespace.listNamed().contains("\(base)-b"))
        #expect(inode(NetworkNamespace.named(names[1]).path) == inodes[1], "the taken name is still its namespace")
    }
}

/// Privileged: a batch acknowledged only at its end still reports each failure where it happened.
@Suite struct ErrorsOnlyBatchTests {
    @Test func aFailureInTheMiddleIsReportedAndTheRestSucceed() throws {
        try withScratchNamespace { ns, h in
            let names: [InterfaceName] = ["b0", "b1", "b0", "b2", "b3"]
            let requests = names.flatMap { LinkRequest.add($0, Bridge()) }
            let results = h.socket.execute(requests, acknowledgeEach: false)
            #expect(results.count == 5)
            for (i, r) in results.enumerated() {
                if i == 2 {
                    #expect((try? r.get()) == nil)
                    if case .failure(let e as NetlinkError) = r { #expect(e.errno == .fileExists) } else { Issue.record("request 2: \(r)") }
                } else {
                    #expect((try? r.get()) != nil, "request \(i)")
                }
            }
            let made = Set(try h.links().map(\.name))
            #expect(made == ["lo", "b0", "b1", "b2", "b3"])
            // The same through perform: it throws that failure after the rest went in.
            let e = #expect(throws: NetlinkError.self) { try h.perform(["c0", "b1", "c1"].map { LinkRequest.add($0, Bridge())[0] }) }
            #expect(e?.errno == .fileExists)
            let c1 = try h.linkIfPresent(named: "c1")
            #expect(c1 != nil)
        }
    }
}
