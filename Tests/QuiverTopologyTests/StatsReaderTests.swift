import Foundation
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverTestSupport
import QuiverTopology
import Testing

/// Privileged: the reader a daemon keeps for `/metrics` reads link counters by index after its
/// first link dump. Its counters must be the ones a full dump sees, and a link deleted or made
/// again since must be noticed, not read from a stale index.
@Suite struct StatsReaderTests {
    /// `a ≤ b` for every VNIC counter (counters only grow; IPv6 chatter may add between reads).
    func notAhead(_ a: TopologyStats, _ b: TopologyStats) -> Bool {
        zip(a.vnics, b.vnics).allSatisfy { x, y in
            x.vnic == y.vnic && x.host == y.host && x.ipackets <= y.ipackets && x.rbytes <= y.rbytes && x.opackets <= y.opackets && x.obytes <= y.obytes
        }
    }

    @Test func countersByIndexMatchAFullDumpAndFollowARecreatedLink() throws {
        let name = LifecycleTests.uniqueName()
        let fabricName = "qtf-" + String(UUID().uuidString.prefix(6)).lowercased()
        let ns = try NetworkNamespace.create(named: fabricName)
        defer { try? NetworkNamespace.delete(named: fabricName) }
        let fabric = try Fabric(fabric: ns)
        let t = try TopologyParser.parse(LifecycleTests.topologyText(name), file: "\(name).yaml")
        _ = try fabric.apply(t)
        defer { _ = try? fabric.destroy(topology: name) }

        let reader = try StatsReader(fabric, t)
        let first = try reader.read()  // the link dump: indices learnt here
        #expect(first.vnics.map(\.host) == ["web", "db", "app"])
        let rtt = try UDPRoundTrip(from: .named("\(name)-acme-web"), to: .named("\(name)-acme-db"),
                                   address: try IPAddress("10.61.0.12"), count: 20, interval: 0.005).run()
        #expect(rtt.lost == 0)
        let byIndex = try reader.read()  // RTM_GETSTATS by index
        let full = try fabric.stats(t)   // a new reader: a full link dump
        let after = try reader.read()
        let web = { (s: TopologyStats) in s.vnics[0] }
        #expect(web(byIndex).opackets >= web(first).opackets + 20, "web sent 20 datagrams: \(web(first)) → \(web(byIndex))")
        #expect(web(byIndex).ipackets >= web(first).ipackets + 20)
        #expect(notAhead(byIndex, full) && notAhead(full, after), "\(byIndex.vnics) / \(full.vnics) / \(after.vnics)")
        #expect(byIndex.capClasses.map(\.usage.label) == full.capClasses.map(\.usage.label))
        #expect(byIndex.capClasses.contains { $0.usage.label == "web/net0" })

        // Deleted behind the reader's back: the row is zero, not another link's counters.
        let fabricLinks = ["ip", "-n", fabricName, "link"]
        _ = witnessOutput(fabricLinks + ["del", "\(name)-web-net0"])
        let gone = try reader.read()
        #expect(gone.vnics[0].opackets == 0 && gone.vnics[0].ipackets == 0 && gone.vnics[0].obytes == 0)
        #expect(gone.vnics[1].ipackets >= byIndex.vnics[1].ipackets, "db's row is still db's")

        // Made again (new index, counters from zero): the reader finds the new link.
        _ = try fabric.apply(t)
        let again = try UDPRoundTrip(from: .named("\(name)-acme-web"), to: .named("\(name)-acme-db"),
                                     address: try IPAddress("10.61.0.12"), port: 7008, count: 5, interval: 0.005).run()
        #expect(again.lost == 0)
        let back = try reader.read()
        let fresh = try fabric.stats(t)
        #expect(web(back).opackets >= 5 && web(back).opackets < web(byIndex).opackets, "the new link's counters: \(web(back))")
        #expect(notAhead(back, fresh))
    }
}
