import Foundation
import QuiverKernel
import QuiverNetlink
import Testing

/// `quiver verify` and `quiver stats` on the README's example, then on a deliberately broken
/// variant whose failing rows must be exactly the ones it broke.
@Suite struct VerifyStatsTrafficTests {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../topologies/two-tenants.yaml").standardized

    func rows(_ json: String) throws -> [[String: Any]] {
        let top = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return top?["rows"] as? [[String: Any]] ?? []
    }

    @Test func exampleVerifiesAndBrokenVariantFailsTheRightRows() throws {
        // At most 3 bytes: the example's longest kernel name is lab-cache-net0.
        let name = "v" + String(UUID().uuidString.prefix(2)).lowercased()
        let text = try String(contentsOf: Self.example, encoding: .utf8).replacingOccurrences(of: "name: lab\n", with: "name: \(name)\n")
        let file = NSTemporaryDirectory() + "quiver-\(name).yaml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fabricName = "qcv-" + String(UUID().uuidString.prefix(6)).lowercased()
        let fabricNS = try NetworkNamespace.create(named: fabricName)
        defer { try? NetworkNamespace.delete(named: fabricName) }
        let fab = ["--fabric-netns", fabricName]
        defer { _ = try? quiver(["destroy", name] + fab) }

        #expect(try quiver(["apply", file] + fab).status == 0)
        let ok = try quiver(["verify", file, "-o", "json"] + fab)
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        let good = try rows(ok.stdout)
        #expect(good.count == 7)
        #expect(good.allSatisfy { $0["passed"] as? Bool == true }, "\(good)")

        // The spoof row's frames are in the counters, per VNIC and kind.
        let stats = try quiver(["stats", name, "-o", "json"] + fab)
        #expect(stats.status == 0)
        let topo = (try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [[String: Any]])?.first
        let app = (topo?["vnics"] as? [[String: Any]])?.first { $0["host"] as? String == "app" }
        let drops = app?["spoofDrops"] as? [String: Int]
        #expect(drops == ["mac": 200, "ip": 400, "restricted": 200], "\(String(describing: drops))")
        let prom = try quiver(["stats", "\(name)-app-net0", "-o", "prometheus"] + fab)
        #expect(prom.stdout.contains("quiver_vnic_protection_drops_total{topology=\"\(name)\",tenant=\"globex\",host=\"app\",vnic=\"net0\",kind=\"mac\"} 200"),
                "\(prom.stdout)")
        #expect(!prom.stdout.contains("host=\"web\""), "a link name selects one VNIC")
        let table = try quiver(["stats", name, "-i", "0.2", "-c", "2"] + fab)
        #expect(table.status == 0)
        #expect(table.stdout.components(separatedBy: "IPKTS/s").count == 3, "two interval reports")

        // Broken: protection off for globex/app, cache's 5M cap gone. Exactly rows 6 and 7 fail.
        let broken = text
            .replacingOccurrences(of: "- {name: net0, over: stub0, ips: [10.10.0.21/24]}",
                                  with: "- {name: net0, over: stub0, ips: [10.10.0.21/24], protection: []}")
            .replacingOccurrences(of: "ips: [10.10.0.22/24], maxbw: 5M}", with: "ips: [10.10.0.22/24]}")
        #expect(broken != text)
        try broken.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try quiver(["apply", file] + fab).status == 0)
        let bad = try quiver(["verify", file, "-o", "json"] + fab)
        #expect(bad.status == 1)
        let failed = try rows(bad.stdout).filter { $0["passed"] as? Bool == false }.compactMap { $0["index"] as? Int }
        #expect(failed == [6, 7], "\(bad.stdout)")

        #expect(try quiver(["destroy", name] + fab).status == 0)
        #expect(try NetlinkHandle(namespace: fabricNS, protocol: 12 /* NETLINK_NETFILTER */).nftTables().isEmpty, "no nftables table left")
    }
}
