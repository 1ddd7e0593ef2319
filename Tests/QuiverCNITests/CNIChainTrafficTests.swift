import Foundation
@testable import QuiverCNI
import QuiverNetlink
import QuiverProbe
import QuiverTestSupport
import QuiverValues
import Testing

/// quiver-cni called as a runtime calls it — environment and stdin, one plugin after another —
/// chained after Debian's containernetworking-plugins `bridge` + `host-local`, in namespaces the
/// test owns: one plays the node (the runtime's namespace, where the bridge and host-side veths
/// are), the others the pods.
@Suite(.serialized) struct CNIChainTrafficTests {
    static let cni = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("quiver-cni").path
    static let plugins = CNICall.pluginDirectory

    final class Node {
        let tag = String(UUID().uuidString.prefix(4)).lowercased()
        var host: String { "qcn-\(tag)" }
        var dataDir: String { "/run/quiver-test-cni-\(tag)" }
        var pods: [String] = []
        init() throws {
            _ = try witnessText(["ip", "netns", "add", host])
            _ = try witnessText(["ip", "-n", host, "link", "set", "lo", "up"])
        }
        func pod(_ n: Int) throws -> String {
            let name = "qcn-\(tag)-p\(n)"
            _ = try witnessText(["ip", "netns", "add", name])
            pods.append(name)
            return name
        }
        deinit {
            for p in pods { _ = try? witnessText(["ip", "netns", "del", p]) }
            _ = try? witnessText(["ip", "netns", "del", host])
            try? FileManager.default.removeItem(atPath: dataDir)
        }
    }

    func call(_ node: Node, _ plugin: String, _ command: String, pod: String?, id: String, config: [String: Any]) throws -> (Int32, [String: Any], String) {
        let c = try CNICall(plugin, command, node: node.host, pod: pod, containerID: id, config: config)
        return (c.status, c.result, c.stderr)
    }

    func bridgeConfig(_ node: Node) -> [String: Any] {
        ["cniVersion": "1.0.0", "name": "qcn", "type": "bridge", "bridge": "qcnbr0", "isGateway": false, "ipMasq": false,
         "ipam": ["type": "host-local", "subnet": "10.222.0.0/24", "dataDir": node.dataDir]]
    }

    func quiverConfig(_ prev: [String: Any]?, ingress: Int, egress: Int, burst: Int? = 2_147_483_647) -> [String: Any] {
        var bw: [String: Any] = ["ingressRate": ingress, "egressRate": egress]
        if let burst { bw["ingressBurst"] = burst; bw["egressBurst"] = burst }
        var c: [String: Any] = ["cniVersion": "1.0.0", "name": "qcn", "type": "quiver-cni", "runtimeConfig": ["bandwidth": bw]]
        if let prev { c["prevResult"] = prev }
        return c
    }

    /// The chain's ADD for one pod: bridge, then quiver-cni with bridge's result.
    func add(_ node: Node, pod: String, id: String, ingress: Int, egress: Int) throws -> (bridge: [String: Any], quiver: (Int32, [String: Any], String)) {
        let (rc, bridge, err) = try call(node, "\(Self.plugins)/bridge", "ADD", pod: pod, id: id, config: bridgeConfig(node))
        #expect(rc == 0, "bridge ADD: \(err) \(bridge)")
        return (bridge, try call(node, Self.cni, "ADD", pod: pod, id: id, config: quiverConfig(bridge, ingress: ingress, egress: egress)))
    }

    func hostVeth(_ result: [String: Any]) -> String? { CNICall.hostVeth(result) }

    func address(_ result: [String: Any]) throws -> IPAddress { try IPAddress(CNICall.address(result)) }

    /// Links of the node tagged by quiver-cni, as `ip` shows them (name → alias).
    func taggedIFBs(_ node: Node) throws -> [String] {
        try witnessText(["ip", "-n", node.host, "-d", "link", "show", "type", "ifb"]).split(separator: "\n")
            .filter { $0.contains("alias quiver:cni/") || $0.contains("alias quiver:cni-tenant/") }.map { String($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Debian's plugin `name` is there (scripts/setup.sh installs containernetworking-plugins);
    /// a test without it records why.
    func pluginInstalled(_ name: String) -> Bool {
        guard FileManager.default.isExecutableFile(atPath: "\(Self.plugins)/\(name)") else {
            Issue.record("containernetworking-plugins is not installed (scripts/setup.sh installs it)")
            return false
        }
        return true
    }

    /// The packets of the named counter `name` of the node's table FAMILY TABLE, as nft lists it.
    func nftCounter(_ node: Node, _ family: String, _ table: String, _ name: String) throws -> Int {
        let text = try witnessText(["ip", "netns", "exec", node.host, "nft", "list", "counter", family, table, name])
        return text.split(whereSeparator: { $0.isWhitespace }).drop { $0 != "packets" }.dropFirst().first.flatMap { Int($0) } ?? -1
    }

    /// 20 UDP frames from pod `from`'s eth0 to `dst` (next hop `via`) for each case: with its own
    /// MAC and address all 20 reach pod `to`; with another source address, or another source
    /// MAC, none does and the guard's counter `DEVICE/ip` or `DEVICE/mac` (table FAMILY TABLE)
    /// grows by exactly 20.
    func expectSpoofsDropped(_ node: Node, family: String, table: String, device: String, from: String, to: String, via: MACAddress,
                             own: (MACAddress, IPAddress), dst: IPAddress, otherIP: IPAddress) throws {
        let sender = try PacketSocket(in: .named(from), device: "eth0"), receiver = try PacketSocket(in: .named(to), device: "eth0")
        let cases: [(String, MACAddress, IPAddress, Int, String?)] = [
            ("own", own.0, own.1, 20, nil),
            ("spoofed IP", own.0, otherIP, 0, "ip"),
            ("spoofed MAC", MACAddress(0x02, 0xde, 0xad, 0, 0, 1), own.1, 0, "mac"),
        ]
        for (what, mac, ip, seen, kind) in cases {
            let before = try kind.map { try nftCounter(node, family, table, "\(device)/\($0)") } ?? 0
            let marker = Frames.marker()
            receiver.drain()
            #expect(sender.send(Frames.udp4(dstMAC: via, srcMAC: mac, src: ip, dst: dst, marker), count: 20) == 20)
            #expect(receiver.count(containing: marker, expected: 20) == seen, "\(what): \(to) saw the wrong number of frames")
            if let kind {
                let after = try nftCounter(node, family, table, "\(device)/\(kind)")
                #expect(after == before + 20, "\(what): counter \(kind) went from \(before) to \(after)")
            }
        }
    }

    @Test func chainedAfterBridgeCapsBothWaysChecksDeletesAndCollects() throws {
        guard pluginInstalled("bridge") else { return }
        let node = try Node()
        let p1 = try node.pod(1), p2 = try node.pod(2), p3 = try node.pod(3)
        // pod1: 10M in, 20M out, with Kubernetes' default burst of 2³¹−1 bits; pod2 uncapped-ish.
        let (b1, q1) = try add(node, pod: p1, id: "pod1", ingress: 10_000_000, egress: 20_000_000)
        #expect(q1.0 == 0, "quiver-cni ADD: \(q1.2) \(q1.1)")
        #expect(q1.2.contains("runtimeConfig.bandwidth.ingressBurst 2147483647 bits"), "the absurd burst is said on stderr: \(q1.2)")
        // The result is bridge's, passed through, in the configuration's version.
        var expected = b1
        expected["cniVersion"] = "1.0.0"
        #expect(NSDictionary(dictionary: q1.1).isEqual(to: expected), "\(q1.1) vs \(b1)")
        let (b2, q2) = try add(node, pod: p2, id: "pod2", ingress: 1_000_000_000, egress: 1_000_000_000)
        #expect(q2.0 == 0, "\(q2.2)")
        let a1 = try address(b1), a2 = try address(b2)
        #expect(try taggedIFBs(node).count == 4)

        // Caps both ways, within 10 %, on the wire between the two pods (goodput: ~0.95 of it).
        let into1 = try TCPBulk(from: .named(p2), to: .named(p1), address: a1, duration: 3).run()
        let out1 = try TCPBulk(from: .named(p1), to: .named(p2), address: a2, duration: 3).run()
        print("quiver-cni: pod1 receives \(Int(into1.bitsPerSecond / 1000)) kbit/s (cap 10M), sends \(Int(out1.bitsPerSecond / 1000)) kbit/s (cap 20M)")
        #expect(into1.bitsPerSecond > 8_500_000 && into1.bitsPerSecond < 10_500_000)
        #expect(out1.bitsPerSecond > 17_000_000 && out1.bitsPerSecond < 21_000_000)

        // CHECK passes; after a class is deleted by hand it fails, with the spec's error object.
        let check = quiverConfig(b1, ingress: 10_000_000, egress: 20_000_000)
        let c1 = try call(node, Self.cni, "CHECK", pod: p1, id: "pod1", config: check)
        #expect(c1.0 == 0, "\(c1.2) \(c1.1)")
        guard let veth1 = hostVeth(b1) else { Issue.record("no host veth in \(b1)"); return }
        let index = try witnessText(["ip", "netns", "exec", node.host, "cat", "/sys/class/net/\(veth1)/ifindex"]).trimmingCharacters(in: .whitespacesAndNewlines)
        for prio in ["15", "16"] { _ = try witnessText(["tc", "-n", node.host, "filter", "del", "dev", "qct\(index)", "parent", "1:", "prio", prio]) }
        _ = try witnessText(["tc", "-n", node.host, "class", "del", "dev", "qct\(index)", "classid", "1:102"])
        let c2 = try call(node, Self.cni, "CHECK", pod: p1, id: "pod1", config: check)
        #expect(c2.0 != 0 && c2.1["code"] as? Int == 101, "\(c2.1)")
        #expect((c2.1["msg"] as? String)?.contains("are not as configured") == true, "\(c2.1)")
        // A different configured rate fails CHECK too.
        #expect(try call(node, Self.cni, "CHECK", pod: p2, id: "pod2", config: quiverConfig(b2, ingress: 5_000_000, egress: 1_000_000_000)).0 != 0)
        // ADD again repairs it.
        #expect(try call(node, Self.cni, "ADD", pod: p1, id: "pod1", config: check).0 == 0)
        #expect(try call(node, Self.cni, "CHECK", pod: p1, id: "pod1", config: check).0 == 0)

        // A foreign root qdisc on pod3's host interface: ADD is a conflict, nothing changes.
        let (rc3, b3, e3) = try call(node, "\(Self.plugins)/bridge", "ADD", pod: p3, id: "pod3", config: bridgeConfig(node))
        #expect(rc3 == 0, "\(e3)")
        guard let veth3 = hostVeth(b3) else { Issue.record("no host veth in \(b3)"); return }
        _ = try witnessText(["tc", "-n", node.host, "qdisc", "add", "dev", veth3, "root", "tbf", "rate", "1mbit", "burst", "10k", "latency", "10ms"])
        let before = try taggedIFBs(node)
        let q3 = try call(node, Self.cni, "ADD", pod: p3, id: "pod3", config: quiverConfig(b3, ingress: 5_000_000, egress: 5_000_000))
        #expect(q3.0 != 0 && q3.1["code"] as? Int == 100, "\(q3.1)")
        #expect((q3.1["msg"] as? String)?.contains("root tbf qdisc") == true, "\(q3.1)")
        #expect(try taggedIFBs(node) == before)
        #expect(try witnessText(["tc", "-n", node.host, "qdisc", "show", "dev", veth3]).contains("tbf"))

        // GC with only pod2 (and pod3) valid: pod1's caps go, pod2's stay; nothing else is touched.
        let gc: [String: Any] = ["cniVersion": "1.1.0", "name": "qcn", "type": "quiver-cni",
                                 "cni.dev/valid-attachments": [["containerID": "pod2", "ifname": "eth0"], ["containerID": "pod3", "ifname": "eth0"]]]
        let g = try call(node, Self.cni, "GC", pod: nil, id: "", config: gc)
        #expect(g.0 == 0, "\(g.2) \(g.1)")
        let left = try taggedIFBs(node)
        #expect(left.count == 2 && left.allSatisfy { $0.contains("quiver:cni/pod2/eth0") }, "\(left)")
        #expect(!(try witnessText(["tc", "-n", node.host, "qdisc", "show", "dev", veth1]).contains("clsact")), "pod1's hooks left behind")
        #expect(try witnessText(["tc", "-n", node.host, "qdisc", "show", "dev", veth3]).contains("tbf"), "GC touched a foreign qdisc")

        // DEL (quiver-cni first, then bridge: a chain's DEL runs in reverse), twice; and once more
        // after the pod's namespace is gone.
        for _ in 0..<2 {
            let d = try call(node, Self.cni, "DEL", pod: p2, id: "pod2", config: quiverConfig(b2, ingress: 1_000_000_000, egress: 1_000_000_000))
            #expect(d.0 == 0, "\(d.2) \(d.1)")
        }
        #expect(try taggedIFBs(node).isEmpty)
        for (pod, id) in [(p1, "pod1"), (p2, "pod2"), (p3, "pod3")] {
            #expect(try call(node, "\(Self.plugins)/bridge", "DEL", pod: pod, id: id, config: bridgeConfig(node)).0 == 0)
        }
        #expect(try call(node, Self.cni, "DEL", pod: nil, id: "pod1", config: quiverConfig(nil, ingress: 10_000_000, egress: 20_000_000)).0 == 0)
    }

    /// `tenant`: two pods share the tenant's 30M each way, pod1 with a 20M floor; both sending at
    /// once to a third pod get 30M together and pod1 its floor. CHECK sees the group; DEL of one
    /// leaves the other capped; DEL of the last removes the tenant's IFBs.
    @Test func tenantAggregateAndFloorAcrossAttachments() throws {
        guard pluginInstalled("bridge") else { return }
        let node = try Node()
        let pods = try (1...3).map { try node.pod($0) }
        func tenantConfig(_ prev: [String: Any]?, floor: String?) -> [String: Any] {
            var c: [String: Any] = ["cniVersion": "1.1.0", "name": "qcn", "type": "quiver-cni", "tenant": ["name": "acme", "maxbw": "30M"]]
            if let floor { c["floor"] = floor }
            if let prev { c["prevResult"] = prev }
            return c
        }
        var results: [[String: Any]] = []
        for (i, p) in pods.enumerated() {
            let (rc, b, err) = try call(node, "\(Self.plugins)/bridge", "ADD", pod: p, id: "t\(i)", config: bridgeConfig(node))
            #expect(rc == 0, "\(err)")
            results.append(b)
        }
        // A stale record of the tenant, as a node namespace whose inode is reused may find: a
        // member whose device is gone. It is no member any more; the ADDs still work.
        var st = stat()
        #expect(stat("/run/netns/\(node.host)", &st) == 0)
        let records = "/run/quiver/cni/net-\(st.st_ino)"
        try FileManager.default.createDirectory(atPath: records, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let stale = try CNITenant(name: "acme", maxbw: try Bitrate("30M")).group(members: [
            CapMember(name: "gone/eth0", device: try InterfaceName(validating: "vethgone0"), mac: MACAddress(2, 0, 0, 0, 0, 9))])
        try JSONEncoder().encode(stale).write(to: URL(fileURLWithPath: "\(records)/tenant-acme.json"))
        for i in 0..<2 {
            let q = try call(node, Self.cni, "ADD", pod: pods[i], id: "t\(i)", config: tenantConfig(results[i], floor: i == 0 ? "20M" : nil))
            #expect(q.0 == 0, "\(q.2) \(q.1)")
        }
        let ifbs = try taggedIFBs(node)
        #expect(ifbs.count == 2 && ifbs.allSatisfy { $0.contains("alias quiver:cni-tenant/acme") }, "\(ifbs)")
        #expect(try call(node, Self.cni, "CHECK", pod: pods[0], id: "t0", config: tenantConfig(results[0], floor: "20M")).0 == 0)
        #expect(try call(node, Self.cni, "CHECK", pod: pods[0], id: "t0", config: tenantConfig(results[0], floor: "10M")).1["code"] as? Int == 101)

        let sink = try address(results[2])
        final class Rates: @unchecked Sendable { var v = [Double](repeating: 0, count: 2); let lock = NSLock() }
        let rates = Rates()
        let threads = (0..<2).map { i in
            Thread {
                let r = (try? TCPBulk(from: .named(pods[i]), to: .named(pods[2]), address: sink, port: UInt16(5400 + i), duration: 4, warmup: 1.5).run().bitsPerSecond) ?? 0
                rates.lock.withLock { rates.v[i] = r }
            }
        }
        threads.forEach { $0.start() }
        Thread.sleep(forTimeInterval: 6)
        let (r0, r1) = rates.lock.withLock { (rates.v[0], rates.v[1]) }
        print("quiver-cni tenant acme 30M: pod1 (floor 20M) \(Int(r0 / 1000)) kbit/s, pod2 \(Int(r1 / 1000)) kbit/s, together \(Int((r0 + r1) / 1000))")
        #expect(r0 + r1 > 25_500_000 && r0 + r1 < 31_500_000)
        #expect(r0 > 17_000_000, "pod1's floor")

        // DEL of pod1: pod2 stays in the tenant's group; DEL of pod2: the tenant's IFBs go.
        #expect(try call(node, Self.cni, "DEL", pod: pods[0], id: "t0", config: tenantConfig(nil, floor: "20M")).0 == 0)
        #expect(try taggedIFBs(node).count == 2)
        #expect(try call(node, Self.cni, "CHECK", pod: pods[1], id: "t1", config: tenantConfig(results[1], floor: nil)).0 == 0)
        let g = try call(node, Self.cni, "GC", pod: nil, id: "", config: ["cniVersion": "1.1.0", "name": "qcn", "type": "quiver-cni", "cni.dev/valid-attachments": [[String: Any]]()])
        #expect(g.0 == 0, "\(g.2)")
        #expect(try taggedIFBs(node).isEmpty, "GC left the tenant's IFBs")
        #expect(try call(node, Self.cni, "DEL", pod: pods[1], id: "t1", config: tenantConfig(nil, floor: nil)).0 == 0)
        for (i, p) in pods.enumerated() { _ = try call(node, "\(Self.plugins)/bridge", "DEL", pod: p, id: "t\(i)", config: bridgeConfig(node)) }
    }

    /// Chained `protection` and `flows`: pod1's host veth gets its own bridge table, which drops
    /// (and counts) frames with another source MAC or IP and passes its own; a flow to pod1's
    /// port 5601 has its own 5M cap inside the 40M one. CHECK sees the table; a deleted one fails
    /// it and ADD repairs it; a foreign table of its name is a conflict with nothing changed; DEL
    /// and GC remove exactly the attachment's table.
    @Test func chainedProtectionDropsSpoofsAndFlowsHaveTheirOwnCaps() throws {
        guard pluginInstalled("bridge") else { return }
        let node = try Node()
        let p1 = try node.pod(1), p2 = try node.pod(2), p3 = try node.pod(3)
        func protectedConfig(_ prev: [String: Any]?) -> [String: Any] {
            var c = quiverConfig(prev, ingress: 40_000_000, egress: 40_000_000, burst: nil)
            c["protection"] = ["mac-nospoof", "ip-nospoof"]
            c["flows"] = [["name": "slow", "transport": "tcp", "local-port": 5601, "maxbw": "5M"]]
            return c
        }
        var bridged: [[String: Any]] = []
        for (i, p) in [p1, p2, p3].enumerated() {
            let (rc, b, err) = try call(node, "\(Self.plugins)/bridge", "ADD", pod: p, id: "cp\(i + 1)", config: bridgeConfig(node))
            #expect(rc == 0, "bridge ADD: \(err)")
            bridged.append(b)
        }
        let q1 = try call(node, Self.cni, "ADD", pod: p1, id: "cp1", config: protectedConfig(bridged[0]))
        #expect(q1.0 == 0, "\(q1.2) \(q1.1)")
        var expected = bridged[0]
        expected["cniVersion"] = "1.0.0"
        #expect(NSDictionary(dictionary: q1.1).isEqual(to: expected), "the result is bridge's, passed through")
        let eth0 = try InterfaceName(validating: "eth0")
        let table = CNIAttachment(containerID: "cp1", ifname: eth0).guardTable
        guard let veth1 = hostVeth(bridged[0]) else { Issue.record("no host veth in \(bridged[0])"); return }
        let listed = try witnessText(["ip", "netns", "exec", node.host, "nft", "list", "table", "bridge", table])
        #expect(listed.contains("comment \"quiver:cni/cp1/eth0 ") && listed.contains("iifname \"\(veth1)\" goto vnic/\(veth1)"), "\(listed)")

        // Frames from pod1: its own pass; another source IP or MAC is dropped on its host veth and counted.
        let a1 = try address(bridged[0]), a2 = try address(bridged[1])
        let mac1 = try #require(try NetlinkHandle(namespace: .named(p1)).link(named: "eth0").mac)
        let mac2 = try #require(try NetlinkHandle(namespace: .named(p2)).link(named: "eth0").mac)
        try expectSpoofsDropped(node, family: "bridge", table: table, device: veth1, from: p1, to: p2, via: mac2, own: (mac1, a1), dst: a2,
                                otherIP: try IPAddress("10.222.0.250"))
        // pod1 still reaches pod2 (ARP and IP from its own addresses pass).
        #expect(try UDPRoundTrip(from: .named(p1), to: .named(p2), address: a2, count: 10, interval: 0.01).run().lost == 0)

        // The flow: TCP to pod1's port 5601 gets 5M; another port the attachment's 40M.
        let flow = try TCPBulk(from: .named(p2), to: .named(p1), address: a1, port: 5601, duration: 3).run()
        let rest = try TCPBulk(from: .named(p2), to: .named(p1), address: a1, port: 5602, duration: 3).run()
        print("quiver-cni chained flow: port 5601 \(Int(flow.bitsPerSecond / 1000)) kbit/s (flow cap 5M), port 5602 \(Int(rest.bitsPerSecond / 1000)) kbit/s (cap 40M)")
        #expect(flow.bitsPerSecond > 4_250_000 && flow.bitsPerSecond < 5_250_000)
        #expect(rest.bitsPerSecond > 34_000_000 && rest.bitsPerSecond < 42_000_000)

        // CHECK passes; without the table it fails; ADD makes it again.
        #expect(try call(node, Self.cni, "CHECK", pod: p1, id: "cp1", config: protectedConfig(bridged[0])).0 == 0)
        var noFlow = protectedConfig(bridged[0])
        noFlow["flows"] = nil
        #expect(try call(node, Self.cni, "CHECK", pod: p1, id: "cp1", config: noFlow).1["code"] as? Int == 101, "a flow less is a difference")
        _ = try witnessText(["ip", "netns", "exec", node.host, "nft", "delete", "table", "bridge", table])
        let bad = try call(node, Self.cni, "CHECK", pod: p1, id: "cp1", config: protectedConfig(bridged[0]))
        #expect(bad.0 != 0 && bad.1["code"] as? Int == 101 && (bad.1["msg"] as? String)?.contains("protection rules") == true, "\(bad.1)")
        #expect(try call(node, Self.cni, "ADD", pod: p1, id: "cp1", config: protectedConfig(bridged[0])).0 == 0)
        #expect(try call(node, Self.cni, "CHECK", pod: p1, id: "cp1", config: protectedConfig(bridged[0])).0 == 0)

        // A foreign bridge table with pod2's table name: ADD is a conflict; no caps, no rules made.
        let table2 = CNIAttachment(containerID: "cp2", ifname: eth0).guardTable
        _ = try witnessText(["ip", "netns", "exec", node.host, "nft", "add", "table", "bridge", table2, "{", "comment", "\"someone else\"", ";", "}"])
        let ifbsBefore = try taggedIFBs(node)
        let q2 = try call(node, Self.cni, "ADD", pod: p2, id: "cp2", config: protectedConfig(bridged[1]))
        #expect(q2.0 != 0 && q2.1["code"] as? Int == 100, "\(q2.1)")
        #expect(try taggedIFBs(node) == ifbsBefore)
        #expect(try witnessText(["ip", "netns", "exec", node.host, "nft", "list", "table", "bridge", table2]).contains("someone else"))
        // DEL of pod2 leaves the foreign table alone.
        #expect(try call(node, Self.cni, "DEL", pod: p2, id: "cp2", config: protectedConfig(nil)).0 == 0)
        #expect(try witnessText(["ip", "netns", "exec", node.host, "nft", "list", "table", "bridge", table2]).contains("someone else"))

        // GC with pod1 gone from the valid list: its table and caps go; pod3's stay, the foreign table too.
        let q3 = try call(node, Self.cni, "ADD", pod: p3, id: "cp3", config: protectedConfig(bridged[2]))
        #expect(q3.0 == 0, "\(q3.2)")
        let table3 = CNIAttachment(containerID: "cp3", ifname: eth0).guardTable
        let gc: [String: Any] = ["cniVersion": "1.1.0", "name": "qcn", "type": "quiver-cni", "cni.dev/valid-attachments": [["containerID": "cp3", "ifname": "eth0"]]]
        let g = try call(node, Self.cni, "GC", pod: nil, id: "", config: gc)
        #expect(g.0 == 0 && g.2.contains("GC removed the protection rules of cp1/eth0"), "\(g.2)")
        let tables = try witnessText(["ip", "netns", "exec", node.host, "nft", "list", "tables", "bridge"])
        #expect(!tables.contains(table) && tables.contains(table3) && tables.contains(table2), "\(tables)")
        // DEL of pod3, twice: its table goes.
        for _ in 0..<2 { #expect(try call(node, Self.cni, "DEL", pod: p3, id: "cp3", config: protectedConfig(nil)).0 == 0) }
        #expect(!(try witnessText(["ip", "netns", "exec", node.host, "nft", "list", "tables", "bridge"]).contains(table3)))
        #expect(try taggedIFBs(node).isEmpty)
        for (i, p) in [p1, p2, p3].enumerated() { _ = try call(node, "\(Self.plugins)/bridge", "DEL", pod: p, id: "cp\(i + 1)", config: bridgeConfig(node)) }
    }

    /// After `ptp` the host side is routed: protection is an `inet` and an `arp` table on it.
    /// With caps on (what the pod sends then goes through an IFB): the pod's own traffic is
    /// routed to the other pod; another source IP, another source MAC and an ARP with another
    /// sender address are dropped and counted. CHECK sees both tables; DEL removes both.
    @Test func protectionAfterPtpHoldsOnTheRoutedHostSide() throws {
        guard pluginInstalled("ptp") else { return }
        let node = try Node()
        let p1 = try node.pod(1), p2 = try node.pod(2)
        let ptp: [String: Any] = ["cniVersion": "1.0.0", "name": "qcn", "type": "ptp", "ipMasq": false,
                                  "ipam": ["type": "host-local", "subnet": "10.223.0.0/24", "dataDir": node.dataDir]]
        var results: [[String: Any]] = []
        for (i, p) in [p1, p2].enumerated() {
            let (rc, prev, err) = try call(node, "\(Self.plugins)/ptp", "ADD", pod: p, id: "pt\(i + 1)", config: ptp)
            #expect(rc == 0, "ptp ADD: \(err)")
            results.append(prev)
        }
        var c = quiverConfig(results[0], ingress: 50_000_000, egress: 50_000_000)
        c["protection"] = ["mac-nospoof", "ip-nospoof"]
        let q = try call(node, Self.cni, "ADD", pod: p1, id: "pt1", config: c)
        #expect(q.0 == 0, "\(q.2) \(q.1)")
        #expect(try taggedIFBs(node).count == 2)
        let table = CNIAttachment(containerID: "pt1", ifname: try InterfaceName(validating: "eth0")).guardTable
        let tables = try witnessText(["ip", "netns", "exec", node.host, "nft", "list", "tables"])
        #expect(tables.contains("table inet \(table)") && tables.contains("table arp \(table)") && !tables.contains("table bridge"), "\(tables)")
        guard let veth1 = hostVeth(results[0]) else { Issue.record("no host veth in \(results[0])"); return }

        let a1 = try address(results[0]), a2 = try address(results[1])
        let gateway = try IPAddress(((results[0]["ips"] as? [[String: Any]])?.first?["gateway"] as? String) ?? "")
        // The pod's own traffic is routed to the other pod (and warms the node's ARP entry for it).
        #expect(try UDPRoundTrip(from: .named(p1), to: .named(p2), address: a2, count: 10, interval: 0.01).run().lost == 0)
        let mac1 = try #require(try NetlinkHandle(namespace: .named(p1)).link(named: "eth0").mac)
        let gwMAC = try #require(try NetlinkHandle(namespace: .named(node.host)).link(named: try InterfaceName(validating: veth1)).mac)
        try expectSpoofsDropped(node, family: "inet", table: table, device: veth1, from: p1, to: p2, via: gwMAC, own: (mac1, a1), dst: a2,
                                otherIP: try IPAddress("10.223.0.250"))
        let sender = try PacketSocket(in: .named(p1), device: "eth0")
        func counter(_ family: String, _ kind: String) throws -> Int { try nftCounter(node, family, table, "\(veth1)/\(kind)") }
        // ARP from another sender address: the arp table drops and counts it.
        let arpBefore = try counter("arp", "ip")
        #expect(sender.send(Frames.arpRequest(ethernetSource: mac1, senderMAC: mac1, senderIP: try IPAddress("10.223.0.251"), target: gateway), count: 20) == 20)
        Thread.sleep(forTimeInterval: 0.2)
        #expect(try counter("arp", "ip") == arpBefore + 20)
        let neighbours = try witnessText(["ip", "-n", node.host, "neigh", "show", "dev", veth1])
        #expect(!neighbours.contains("10.223.0.251"), "the spoofed ARP reached the node's neighbour table: \(neighbours)")

        // CHECK passes; without the arp table it fails; DEL removes both tables and the caps.
        #expect(try call(node, Self.cni, "CHECK", pod: p1, id: "pt1", config: c).0 == 0)
        _ = try witnessText(["ip", "netns", "exec", node.host, "nft", "delete", "table", "arp", table])
        #expect(try call(node, Self.cni, "CHECK", pod: p1, id: "pt1", config: c).1["code"] as? Int == 101)
        #expect(try call(node, Self.cni, "DEL", pod: p1, id: "pt1", config: c).0 == 0)
        #expect(try witnessText(["ip", "netns", "exec", node.host, "nft", "list", "tables"]).isEmpty)
        #expect(try taggedIFBs(node).isEmpty)
        for (i, p) in [p1, p2].enumerated() { _ = try call(node, "\(Self.plugins)/ptp", "DEL", pod: p, id: "pt\(i + 1)", config: ptp) }
    }
}
