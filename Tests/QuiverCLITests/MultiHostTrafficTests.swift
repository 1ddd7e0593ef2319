import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverTestSupport
import Testing

/// Multi-node fabrics, each node simulated as a namespace of this machine (`ScratchUnderlay`:
/// 192.0.2.N on one underlay bridge, nothing else reachable) with its fabric built there by
/// `quiver apply FILE --node nN --fabric-netns NS`: `topologies/multihost.yaml` under a fresh
/// name — three nodes, two tenants on one switch, acme on n1 and n2, beta on n2 and n3.
@Suite(.serialized) struct MultiHostTrafficTests {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../topologies/multihost.yaml").standardized

    /// The example under a fresh name, written to a temporary file, with the nodes of `u`.
    struct Scene {
        let name: String
        let file: String
        let text: String
        let u: ScratchUnderlay

        init(attacker: Bool = false) throws {
            name = "m" + String(UUID().uuidString.prefix(2)).lowercased()
            text = try String(contentsOf: MultiHostTrafficTests.example, encoding: .utf8).replacingOccurrences(of: "name: mh\n", with: "name: \(name)\n")
            file = NSTemporaryDirectory() + "quiver-\(name).yaml"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            u = try ScratchUnderlay(nodes: 3, attacker: attacker)
        }

        func node(_ i: Int) -> [String] { ["--node", "n\(i)", "--fabric-netns", u.nodes[i - 1].namespace] }

        func applyAll() throws {
            for i in 1...3 {
                let r = try quiver(["apply", file] + node(i))
                try #require(r.status == 0, "apply n\(i): \(r.stdout)\(r.stderr)")
            }
        }

        /// Destroys every node's part; then nothing of the topology is left anywhere.
        func destroyAll() throws {
            for i in 1...3 {
                let r = try quiver(["destroy", file] + node(i))
                #expect(r.status == 0, "destroy n\(i): \(r.stdout)\(r.stderr)")
            }
            #expect(!NetworkNamespace.listNamed().contains { $0.hasPrefix(name + "-") }, "host namespaces left")
            for n in u.nodes {
                let links = witnessOutput(["ip", "-n", n.namespace, "-o", "link", "show"])
                #expect(links.split(separator: "\n").count == 2, "\(n.namespace) keeps only lo and u0: \(links)")
                #expect(witnessOutput(["ip", "netns", "exec", n.namespace, "nft", "list", "tables"]).isEmpty, "nftables tables left in \(n.namespace)")
            }
            let records = (try? FileManager.default.contentsOfDirectory(atPath: "/run/quiver/topologies")) ?? []
            #expect(!records.contains { $0.hasPrefix(name + "@") || $0 == name + ".json" }, "\(records)")
        }

        func cleanUp() {
            for i in 1...3 { _ = try? quiver(["destroy", file] + node(i)) }
            try? FileManager.default.removeItem(atPath: file)
            #expect(u.tearDown().isEmpty)
        }
    }

    func rows(_ json: String) throws -> [[String: Any]] {
        (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["rows"] as? [[String: Any]] ?? []
    }

    /// Every row of the file's `expect:` — reach and no-reach across nodes and on one node, caps
    /// both ways across nodes, spoofing dropped on its own node — from one `quiver verify`.
    @Test func everyRowHoldsAcrossNodesAndDestroyLeavesNothing() throws {
        let s = try Scene()
        defer { s.cleanUp() }
        try s.applyAll()
        // A second apply on each node changes nothing.
        for i in 1...3 {
            let again = try quiver(["apply", s.file, "-o", "json"] + s.node(i))
            let ops = (try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])?["operations"] as? [String] ?? ["?"]
            #expect(ops.allSatisfy { $0.hasPrefix("apply caps of tenant") }, "n\(i) re-apply: \(ops)")
        }
        let v = try quiver(["verify", s.file, "-o", "json"])
        let r = try rows(v.stdout)
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        #expect(r.count == 11)
        #expect(r.allSatisfy { $0["passed"] as? Bool == true }, "\(r.filter { $0["passed"] as? Bool != true })")
        // With --node, only the rows from that node's hosts: n1 holds acme/web (rows 1, 3, 6, 9... ).
        let n1 = try rows(try quiver(["verify", s.file, "-o", "json"] + s.node(1)).stdout)
        #expect(n1.compactMap { $0["from"] as? String }.allSatisfy { $0 == "acme/web" } && !n1.isEmpty, "\(n1)")

        // The segments as the kernel has them on n2 (both tenants there): a VXLAN device per
        // tenant, its own VNI, no learning, neighbour suppression, MTU 1450.
        let vx = witnessOutput(["ip", "-n", s.u.nodes[1].namespace, "-d", "-o", "link", "show", "type", "vxlan"])
        #expect(vx.contains("vxlan id 100 local 192.0.2.2") && vx.contains("vxlan id 101 local 192.0.2.2"), "\(vx)")
        #expect(vx.components(separatedBy: "nolearning").count == 3 && vx.components(separatedBy: "neigh_suppress on").count == 3, "\(vx)")
        #expect(vx.components(separatedBy: "mtu 1450").count == 3, "\(vx)")
        try s.destroyAll()
    }

    /// Frames on the fabric: a broadcast and an IPv6 all-nodes multicast from acme/web reach
    /// acme/db on n2 and no beta endpoint; an ARP request for a remote endpoint is answered on
    /// n1 without crossing the underlay (one for an unknown address does cross: the counter sees).
    @Test func floodsStayInTheTenantAndARPIsAnsweredLocally() throws {
        let s = try Scene()
        defer { s.cleanUp() }
        try s.applyAll()
        let ns = { (host: String, tenant: String) in NetworkNamespace.named("\(s.name)-\(tenant)-\(host)") }
        let web = try PacketSocket(in: ns("web", "acme"), device: "net0")
        let db = try PacketSocket(in: ns("db", "acme"), device: "net0")
        let api = try PacketSocket(in: ns("api", "beta"), device: "net0")
        let job = try PacketSocket(in: ns("job", "beta"), device: "net0")
        let webMAC = try #require(try NetlinkHandle(namespace: ns("web", "acme")).link(named: "net0").mac)
        let dbMAC = try #require(try NetlinkHandle(namespace: ns("db", "acme")).link(named: "net0").mac)
        for (kind, frame) in [
            ("broadcast", { (m: [UInt8]) in Frames.udp4(dstMAC: Frames.broadcast, srcMAC: webMAC, src: try! IPAddress("10.10.0.11"), dst: try! IPAddress("10.10.0.255"), m) }),
            ("all-nodes", { (m: [UInt8]) in Frames.udp6(dstMAC: MACAddress(0x33, 0x33, 0, 0, 0, 1), srcMAC: webMAC, src: try! IPAddress("fd10::11"), dst: try! IPAddress("ff02::1"), m) }),
        ] {
            let marker = Frames.marker()
            for l in [db, api, job] { l.drain() }
            #expect(web.send(frame(marker), count: 5) == 5)
            #expect(db.count(containing: marker, expected: 5) == 5, "\(kind) reaches acme/db on n2")
            #expect(api.count(containing: marker, quietSeconds: 0.2) == 0, "\(kind) stays out of beta/api (n2)")
            #expect(job.count(containing: marker, quietSeconds: 0.2) == 0, "\(kind) stays out of beta/job (n3)")
        }

        // ARP for acme/db, counted where n1's underlay traffic arrives: its port on the underlay
        // bridge (a packet socket on n1's own u0 would not see what n1 sends).
        let underlay = try PacketSocket(in: .named(s.u.underlay), device: "p1")
        func ask(_ target: String) throws -> (replies: Int, crossed: Int) {
            let marker = Frames.marker()
            web.drain()
            underlay.drain()
            _ = web.send(Frames.arpRequest(ethernetSource: webMAC, senderMAC: webMAC, senderIP: try IPAddress("10.10.0.11"), target: try IPAddress(target), marker: marker), count: 3)
            let crossed = underlay.count(containing: marker, quietSeconds: 0.3)
            // A reply: ARP (0x0806), op 2, from db's MAC.
            let replies = web.count(containing: [0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2] + dbMAC.bytes, quietSeconds: 0.3)
            return (replies, crossed)
        }
        let known = try ask("10.10.0.12")
        #expect(known.replies == 3 && known.crossed == 0, "ARP for acme/db: \(known)")
        let unknown = try ask("10.10.0.99")
        #expect(unknown.replies == 0 && unknown.crossed == 3, "ARP for an address no one has goes to n2 once per request: \(unknown)")
        // An ARP request across tenants is not answered either (on n2 the bridge knows beta/job).
        let dbSocket = db
        dbSocket.drain()
        _ = dbSocket.send(Frames.arpRequest(ethernetSource: dbMAC, senderMAC: dbMAC, senderIP: try IPAddress("10.10.0.12"), target: try IPAddress("10.10.0.22")), count: 3)
        #expect(dbSocket.count(containing: [0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2], quietSeconds: 0.4) == 0, "acme/db learns nothing of beta/job")
        try s.destroyAll()
    }

    /// An attacker on the underlay forges VXLAN with acme's VNI and an inner frame for acme/web:
    /// none is delivered and n1's underlay counter grows by exactly the number sent — also with
    /// the reserved byte after the VNI set, which the kernel ignores.
    @Test func forgedVXLANFromTheUnderlayIsDroppedAndCounted() throws {
        let s = try Scene(attacker: true)
        defer { s.cleanUp() }
        try s.applyAll()
        let webNS = NetworkNamespace.named("\(s.name)-acme-web")
        let web = try PacketSocket(in: webNS, device: "net0")
        let webMAC = try #require(try NetlinkHandle(namespace: webNS).link(named: "net0").mac)
        let attacker = try PacketSocket(in: .named(s.u.attacker!.namespace), device: "u0")
        func dropped() throws -> Int {
            let stats = try quiver(["stats", s.file, "-o", "json"] + s.node(1))
            return ((try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [[String: Any]])?.first?["underlayDrops"] as? Int) ?? -1
        }
        let before = try dropped()
        #expect(before == 0)
        var sent = 0
        for reserved: UInt8 in [0, 0x5a] {
            let marker = Frames.marker()
            let inner = Frames.udp4(dstMAC: webMAC, srcMAC: MACAddress(0x02, 0xee, 0, 0, 0, 1), src: try IPAddress("10.10.0.12"), dst: try IPAddress("10.10.0.11"), marker)
            #expect(attacker.send(s.u.forgedVXLAN(to: s.u.nodes[0], vni: 100, reserved: reserved, inner: inner), count: 40) == 40)
            sent += 40
            #expect(web.count(containing: marker, quietSeconds: 0.3) == 0, "a forged frame reached acme/web (reserved \(reserved))")
        }
        #expect(try dropped() == before + sent)
        try s.destroyAll()
    }

    /// A host added on n2: n1's next apply adds exactly its forwarding entries (tunnel, bridge,
    /// ARP and ND), and web reaches it; a node's apply killed part-way converges on the next one.
    @Test func aNewRemoteHostIsOneMoreEntryAndAKilledApplyConverges() throws {
        let s = try Scene()
        defer { s.cleanUp() }
        try s.applyAll()
        let edited = s.text.replacingOccurrences(of: "  - name: beta\n", with: """
                  - {name: cache, node: n2, vnics: [{name: net0, over: sw0, ips: [10.10.0.13/24, "fd10::13/64"]}]}
              - name: beta

            """)
        #expect(edited != s.text)
        try edited.write(toFile: s.file, atomically: true, encoding: .utf8)
        // n2 first, killed part-way, then applied for real.
        try quiverKilled(["apply", s.file] + s.node(2), after: 0.02)
        let n2 = try quiver(["apply", s.file] + s.node(2))
        #expect(n2.status == 0, "\(n2.stdout)\(n2.stderr)")
        let settled = try quiver(["apply", s.file, "--dry-run", "-o", "json"] + s.node(2))
        let left = (try JSONSerialization.jsonObject(with: Data(settled.stdout.utf8)) as? [String: Any])?["operations"] as? [String] ?? ["?"]
        #expect(left.allSatisfy { $0.hasPrefix("apply caps of tenant") }, "n2 after the killed apply: \(left)")
        // n1's plan: exactly cache's entries.
        let plan = try quiver(["apply", s.file, "--dry-run", "-o", "json"] + s.node(1))
        let ops = ((try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])?["operations"] as? [String] ?? [])
            .filter { !$0.hasPrefix("apply caps") }
        // (The rules are replaced too: only acme's ports may ask the bridge for cache's addresses.)
        #expect(ops.filter { $0.hasPrefix("add forwarding entry") }.count == 4, "\(ops)")
        #expect(ops.allSatisfy { $0.hasPrefix("add forwarding entry") || $0 == "replace isolation and protection rules" }, "\(ops)")
        #expect(ops.contains { $0.contains("→ 192.0.2.2") } && ops.contains { $0.contains("10.10.0.13 is at") } && ops.contains { $0.contains("fd10::13 is at") })
        #expect(try quiver(["apply", s.file] + s.node(1)).status == 0)
        let fdb = witnessOutput(["bridge", "-n", s.u.nodes[0].namespace, "fdb", "show"])
        let cacheMAC = try #require(try NetlinkHandle(namespace: .named("\(s.name)-acme-cache")).link(named: "net0").mac)
        #expect(fdb.contains("\(cacheMAC) dev \(s.name).v") && fdb.contains("dst 192.0.2.2"), "\(fdb)")
        let probe = try Reach.icmpEcho(from: .named("\(s.name)-acme-web"), to: try IPAddress("10.10.0.13"))
        #expect(probe.answered, "web reaches the new host on n2: \(probe)")
        try s.destroyAll()
    }
}

/// What `--node`, a node's underlay and its MTU refuse, through the CLI — each with its message,
/// and the node's namespace and Quiver's records as they were.
@Suite(.serialized) struct MultiHostRefusalTrafficTests {
    @Test func hostileNodeArgumentsAndMisfitsChangeNothing() throws {
        let s = try MultiHostTrafficTests.Scene()
        defer { s.cleanUp() }
        let ns = s.u.nodes[0].namespace
        func snapshot() -> String {
            witnessOutput(["ip", "-n", ns, "-o", "link", "show"]) + witnessOutput(["ip", "netns", "exec", ns, "nft", "list", "ruleset"])
                + ((try? FileManager.default.contentsOfDirectory(atPath: "/run/quiver/topologies"))?.filter { $0.hasPrefix(s.name) }.joined() ?? "")
                + NetworkNamespace.listNamed().filter { $0.hasPrefix(s.name + "-") }.joined()
        }
        let before = snapshot()
        for (args, status, message) in [
            (["--node", "n9", "--fabric-netns", ns], 2, "--node \"n9\": \(s.file) has no such node (its nodes: n1, n2, n3)"),
            (["--node", "../n1", "--fabric-netns", ns], 2, "--node: "),
            (["--node", "n1; reboot", "--fabric-netns", ns], 2, "--node: "),
            // No --node, and the fabric namespace holds no node's address: found by address fails.
            (["--fabric-netns", s.u.underlay], 2, "no node of \(s.file) has an underlay address of this host"),
            // The wrong node for this namespace: its underlay is not here.
            (["--node", "n2", "--fabric-netns", ns], 2, "node n2: its underlay 192.0.2.2 is not an address of the network namespace \(ns)"),
        ] {
            let r = try quiver(["apply", s.file] + args)
            #expect(r.status == Int32(status), "\(args): \(r.status) \(r.stderr)")
            if !message.hasPrefix("--node: ") { #expect(r.stderr.contains("nothing was changed"), "\(args): \(r.stderr)") }
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(snapshot() == before, "\(args) changed something")
        }
        // An MTU that does not fit in the underlay less the VXLAN overhead: exit 2 at its key.
        let big = s.text.replacingOccurrences(of: "ips: [10.10.0.11/24, \"fd10::11/64\"], maxbw: 20M}", with: "ips: [10.10.0.11/24, \"fd10::11/64\"], maxbw: 20M, mtu: 1480}")
        #expect(big != s.text)
        try big.write(toFile: s.file, atomically: true, encoding: .utf8)
        let r = try quiver(["apply", s.file] + s.node(1))
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("error: VNIC web/net0 has mtu 1480, but a frame on a switch that spans nodes fits 1450 bytes"), "\(r.stderr)")
        #expect(r.stderr.contains("nothing was changed"))
        #expect(snapshot() == before)
        // `--node` on a file without `nodes:`.
        let single = NSTemporaryDirectory() + "quiver-\(s.name)-single.yaml"
        try "name: \(s.name)\ntenants:\n  - name: a\n    hosts: [{name: h, vnics: [{name: n0, over: sw0}]}]\nswitches: [{name: sw0}]\n".write(toFile: single, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: single) }
        let plain = try quiver(["apply", single, "--node", "n1", "--fabric-netns", ns])
        #expect(plain.status == 2 && plain.stderr.contains("has no `nodes:`"), "\(plain.stderr)")
        #expect(snapshot() == before)
    }

    /// Nodes joined over IPv6: the tunnels speak IPv6, endpoints get 1500 − 70 bytes.
    @Test func anIPv6UnderlayCarriesTheSegments() throws {
        let u = try ScratchUnderlay(nodes: 2, ipv6: true)
        defer { #expect(u.tearDown().isEmpty) }
        let name = "m6" + String(UUID().uuidString.prefix(1)).lowercased()
        let file = NSTemporaryDirectory() + "quiver-\(name).yaml"
        try """
            name: \(name)
            nodes:
              - {name: a, underlay: "2001:db8::1"}
              - {name: b, underlay: "2001:db8::2"}
            switches: [{name: sw0}]
            tenants:
              - name: t
                hosts:
                  - {name: h1, node: a, vnics: [{name: net0, over: sw0, ips: [10.66.0.1/24]}]}
                  - {name: h2, node: b, vnics: [{name: net0, over: sw0, ips: [10.66.0.2/24]}]}
            expect:
              - reach: {from: t/h1, to: t/h2, probe: [icmp, tcp, arp]}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let nodes = [("a", u.nodes[0].namespace), ("b", u.nodes[1].namespace)]
        defer { for (n, ns) in nodes { _ = try? quiver(["destroy", file, "--node", n, "--fabric-netns", ns]) } }
        for (n, ns) in nodes {
            // No --node: each node is found by its address.
            let r = try quiver(["apply", file, "--fabric-netns", ns])
            #expect(r.status == 0, "\(n): \(r.stderr)")
        }
        let v = try quiver(["verify", file])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        let vx = witnessOutput(["ip", "-n", u.nodes[0].namespace, "-d", "-o", "link", "show", "type", "vxlan"])
        #expect(vx.contains("local 2001:db8::1") && vx.contains("mtu 1430"), "\(vx)")
        let mtu = try NetlinkHandle(namespace: .named("\(name)-t-h1")).link(named: "net0").mtu
        #expect(mtu == 1430)
        for (n, ns) in nodes { #expect(try quiver(["destroy", file, "--node", n, "--fabric-netns", ns]).status == 0) }
        #expect(!NetworkNamespace.listNamed().contains { $0.hasPrefix(name + "-") })
    }
}
