import Foundation
import QuiverKernel
import QuiverNetlink
import Testing

@Suite struct CapCommandTests {
    @Test func setShowChangeClear() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("d0", Veth(peer: "d0p", peerSettings: LinkSettings(up: true)), LinkSettings(up: true))
            let set = try quiver(["cap", "set", "d0", "--netns", ns.name!, "--maxbw", "50M", "--floor", "10M",
                                  "--flow", "http,transport=tcp,local-port=80,maxbw=20M"])
            #expect(set.status == 0, "\(set.stderr)")
            #expect(set.stdout.contains("d0: maxbw 50M, floor 10M"))
            let again = try quiver(["cap", "set", "d0", "--netns", ns.name!, "--maxbw", "50M", "--floor", "10M",
                                    "--flow", "http,transport=tcp,local-port=80,maxbw=20M"])
            #expect(again.stdout.contains("cap unchanged"))

            let json = try quiver(["cap", "show", "d0", "--netns", ns.name!, "-o", "json"])
            #expect(json.status == 0)
            let rows = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(rows.contains { $0["label"] as? String == "d0/http" && $0["ceil"] as? String == "20M" && $0["direction"] as? String == "inbound" })
            #expect(rows.contains { $0["label"] as? String == "d0" && $0["rate"] as? String == "10M" })
            #expect(rows.contains { $0["label"] as? String == "d0/small" && $0["rate"] as? String == "1M" })

            let change = try quiver(["cap", "set", "d0", "--netns", ns.name!, "--maxbw", "30M"])
            #expect(change.status == 0)
            let table = try quiver(["cap", "show", "d0", "--netns", ns.name!])
            #expect(table.stdout.split(separator: "\n").contains { $0.hasPrefix("outbound") && $0.contains(" d0 ") && $0.contains("30M") })

            let clear = try quiver(["cap", "clear", "d0", "--netns", ns.name!])
            #expect(clear.stdout.contains("cap removed"))
            #expect(try h.links().map(\.name).sorted() == ["d0", "d0p", "lo"])
        }
    }

    @Test func badInputExitsTwoWithAHint() throws {
        let unit = try quiver(["cap", "set", "d0", "--maxbw", "30Mbps"])
        #expect(unit.status == 2)
        #expect(unit.stderr.contains("use K, M or G"))
        let flow = try quiver(["cap", "set", "d0", "--maxbw", "30M", "--flow", "x,port=1,maxbw=1M"])
        #expect(flow.status == 2)
        #expect(flow.stderr.contains("unknown key \"port\""))
        let name = try quiver(["cap", "show", "a-name-longer-than-15"])
        #expect(name.status == 2)
        #expect(name.stderr.contains("at most 15"))
    }
}
