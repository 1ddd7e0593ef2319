import Foundation
import QuiverKernel
import QuiverNetlink
import Testing

@Suite struct LinksCommandTests {
    @Test func tableAndJSONShowBridgeAndOver() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("sw0", Bridge(), LinkSettings(up: true))
            let sw = try h.link(named: "sw0")
            try h.addLink("port0", Veth(peer: "guest0"), LinkSettings(up: true, masterIndex: sw.index))
            try h.addLink("ifb-q", IFB())

            let table = try quiver(["links", "--netns", ns.name!])
            #expect(table.status == 0)
            let lines = table.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            #expect(lines.first == ["LINK", "CLASS", "MTU", "STATE", "BRIDGE", "OVER"])
            #expect(lines.contains(["port0", "veth", "1500", "up", "sw0", "guest0"]) || lines.contains(["port0", "veth", "1500", "lowerlayerdown", "sw0", "guest0"]))
            #expect(lines.contains { $0.first == "ifb-q" && $0[1] == "ifb" && $0[3] == "down" })

            let json = try quiver(["links", "--netns", ns.name!, "-o", "json"])
            #expect(json.status == 0)
            let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]] ?? []
            let port = try #require(rows.first { $0["link"] as? String == "port0" })
            #expect(port["class"] as? String == "veth")
            #expect(port["bridge"] as? String == "sw0")
            #expect(port["over"] as? String == "guest0")
            #expect((port["statistics"] as? [String: Any])?["txPackets"] != nil)

            let stats = try quiver(["links", "--netns", ns.name!, "-s"])
            #expect(stats.stdout.hasPrefix("LINK  IPKTS  RBYTES  IERRORS  OPKTS  OBYTES  OERRORS") || stats.stdout.split(separator: "\n").first?.split(separator: " ").map(String.init) == ["LINK", "IPKTS", "RBYTES", "IERRORS", "OPKTS", "OBYTES", "OERRORS"])
        }
    }

    @Test func usageErrorsExitTwo() throws {
        let missing = try quiver(["links", "--netns", "no-such-ns-\(getpid())"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no network namespace named"))
        let badFormat = try quiver(["links", "-o", "xml"])
        #expect(badFormat.status == 2)
        #expect(badFormat.stderr.contains("table"))
    }
}
