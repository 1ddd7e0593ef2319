import Foundation
import QuiverNetlink
import QuiverProbe
import QuiverTestSupport
import QuiverValues
import Testing

/// Main-plugin mode as a runtime drives it: quiver-cni makes each pod's veth pair on its own
/// switch, gets addresses from Debian's host-local (delegated through CNI_PATH), keeps tenants
/// apart and protection on, with caps as in chained mode — in namespaces the test owns.
@Suite(.serialized) struct CNIMainTrafficTests {
    typealias Node = CNIChainTrafficTests.Node
    static let cni = CNIChainTrafficTests.cni

    func config(_ node: Node, tenant: String, prev: [String: Any]? = nil) -> [String: Any] {
        var c: [String: Any] = ["cniVersion": "1.0.0", "name": "qcm", "type": "quiver", "switch": "qcmsw-\(node.tag)",
                                "ipam": ["type": "host-local", "subnet": "10.225.0.0/24", "dataDir": node.dataDir],
                                "tenant": ["name": tenant, "maxbw": "100M"], "protection": ["mac-nospoof", "ip-nospoof"],
                                "runtimeConfig": ["bandwidth": ["ingressRate": 20_000_000, "egressRate": 20_000_000]]]
        if let prev { c["prevResult"] = prev }
        return c
    }

    func call(_ node: Node, _ command: String, pod: String?, id: String, config: [String: Any]) throws -> CNICall {
        try CNICall(Self.cni, command, node: node.host, pod: pod, containerID: id, config: config)
    }

    @Test func vethsAddressesTenantsProtectionAndCaps() throws {
        guard FileManager.default.isExecutableFile(atPath: "\(CNICall.pluginDirectory)/host-local") else {
            Issue.record("containernetworking-plugins is not installed (scripts/setup.sh installs it)")
            return
        }
        let node = try Node()
        let pods = try (1...3).map { try node.pod($0) }
        let tenants = ["red", "red", "blue"]
        var results: [[String: Any]] = []
        for (i, p) in pods.enumerated() {
            let r = try call(node, "ADD", pod: p, id: "m\(i)", config: config(node, tenant: tenants[i]))
            #expect(r.status == 0, "\(r.stderr) \(r.result)")
            results.append(r.result)
        }
        guard results.count == 3, results.allSatisfy({ !CNICall.address($0).isEmpty }) else { Issue.record("\(results)"); return }
        // The result names both ends; the container's interface has the IPAM address.
        let ifaces = results[0]["interfaces"] as? [[String: Any]] ?? []
        #expect(ifaces.count == 2 && ifaces[1]["sandbox"] as? String == "/run/netns/\(pods[0])", "\(ifaces)")
        let a = try results.map { try IPAddress(CNICall.address($0)) }
        #expect(try witnessText(["ip", "-n", pods[0], "-br", "addr", "show", "eth0"]).contains(a[0].description))
        let sw = "qcmsw-\(node.tag)"
        #expect(try witnessText(["ip", "-n", node.host, "-d", "link", "show", sw]).contains("alias quiver:cni-switch/\(sw)"))

        // Same tenant reaches; the other tenant does not; the table counts what it kept apart.
        let same = try UDPRoundTrip(from: .named(pods[0]), to: .named(pods[1]), address: a[1], count: 20, interval: 0.01).run()
        let other = try UDPRoundTrip(from: .named(pods[0]), to: .named(pods[2]), address: a[2], count: 5, interval: 0.01).run()
        #expect(same.lost == 0, "red → red lost \(same.lost)")
        #expect(other.lost == 5, "red → blue answered \(5 - other.lost)")
        let counter = try witnessText(["ip", "netns", "exec", node.host, "nft", "list", "counter", "bridge", "cni-\(sw)", "tenant/blue/isolation"])
        let dropped = counter.split(whereSeparator: { $0.isWhitespace }).drop { $0 != "packets" }.dropFirst().first.flatMap { Int($0) } ?? 0
        #expect(dropped > 0, "the blue tenant's isolation counter: \(counter)")
        // The cap holds on the pair quiver-cni made.
        let bulk = try TCPBulk(from: .named(pods[1]), to: .named(pods[0]), address: a[0], duration: 3).run()
        print("quiver-cni main: red pod1 receives \(Int(bulk.bitsPerSecond / 1000)) kbit/s (cap 20M)")
        #expect(bulk.bitsPerSecond > 17_000_000 && bulk.bitsPerSecond < 21_000_000)

        // CHECK passes; without the switch's table it fails.
        #expect(try call(node, "CHECK", pod: pods[0], id: "m0", config: config(node, tenant: "red", prev: results[0])).status == 0)
        _ = try witnessText(["ip", "netns", "exec", node.host, "nft", "delete", "table", "bridge", "cni-\(sw)"])
        let bad = try call(node, "CHECK", pod: pods[0], id: "m0", config: config(node, tenant: "red", prev: results[0]))
        #expect(bad.status != 0 && bad.result["code"] as? Int == 101, "\(bad.result)")

        // DEL (twice for one): pairs, rules and caps gone, addresses released; the switch stays.
        for (i, p) in pods.enumerated() {
            let d = try call(node, "DEL", pod: p, id: "m\(i)", config: config(node, tenant: tenants[i]))
            #expect(d.status == 0, "\(d.stderr) \(d.result)")
        }
        #expect(try call(node, "DEL", pod: nil, id: "m0", config: config(node, tenant: "red")).status == 0)
        let left = try witnessText(["ip", "-n", node.host, "-br", "link"])
        #expect(!left.contains("qv") && !left.contains("qtf-") && !left.contains("qtt-"), "\(left)")
        #expect((try? witnessText(["ip", "netns", "exec", node.host, "nft", "list", "table", "bridge", "cni-\(sw)"])) == nil)
        #expect(try witnessText(["ip", "-n", pods[0], "-br", "link"]).contains("eth0") == false)
        // No record of the switch is left either (the records directory is named after the
        // node namespace's inode, which a later namespace may reuse).
        let records = try witnessText(["ip", "netns", "exec", node.host, "sh", "-c", "ls /run/quiver/cni/net-$(stat -L -c %i /proc/self/ns/net) 2>/dev/null || true"])
        #expect(!records.contains("switch-\(sw).json"), "records left: \(records)")

        // A foreign bridge of that name is never used.
        let foreign = "qcmf-\(node.tag)"
        _ = try witnessText(["ip", "-n", node.host, "link", "add", foreign, "type", "bridge"])
        var c = config(node, tenant: "red")
        c["switch"] = foreign
        let refused = try call(node, "ADD", pod: pods[0], id: "m9", config: c)
        #expect(refused.status != 0 && refused.result["code"] as? Int == 100, "\(refused.result)")
        #expect(!(try witnessText(["ip", "-n", node.host, "-br", "link"]).contains("qv")))
    }
}
