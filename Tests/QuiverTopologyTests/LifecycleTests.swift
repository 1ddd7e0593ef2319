import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverTopology
import QuiverTestSupport
import Testing

/// Privileged: apply → state matches (witnesses: ip, tc) → re-apply is a no-op → edits change in
/// place → destroy leaves nothing. The fabric lives in a namespace the test owns.
@Suite struct LifecycleTests {
    static func topologyText(_ name: String, webMaxbw: String = "50M", dbIP: String = "10.61.0.12/24") -> String {
        """
        name: \(name)
        switches:
          - name: sw0
        tenants:
          - name: acme
            maxbw: 80M
            hosts:
              - name: web
                vnics:
                  - {name: net0, over: sw0, ips: [10.61.0.11/24], gateway: 10.61.0.1, maxbw: \(webMaxbw), floor: 10M}
              - name: db
                vnics:
                  - {name: net0, over: sw0, ips: [\(dbIP)], mac: random}
          - name: globex
            hosts:
              - name: app
                vnics:
                  - {name: net0, over: sw0, ips: [10.61.0.21/24], maxbw: 5M}
        """
    }

    static func uniqueName() -> String { "t" + String(UUID().uuidString.prefix(5)).lowercased().filter { $0.isLetter || $0.isNumber } }

    func withFabricNamespace<T>(_ body: (NetworkNamespace, Fabric) throws -> T) throws -> T {
        let name = "qtf-" + String(UUID().uuidString.prefix(6)).lowercased()
        let ns = try NetworkNamespace.create(named: name)
        defer { try? NetworkNamespace.delete(named: name) }
        return try body(ns, try Fabric(fabric: ns))
    }

    func sh(_ args: [String]) throws -> String { witnessOutput(args) }

    @Test func applyReapplyEditDestroy() throws {
        let name = Self.uniqueName()
        try withFabricNamespace { fabricNS, fabric in
            let t = try TopologyParser.parse(Self.topologyText(name), file: "\(name).yaml")
            let first = try fabric.apply(t)
            #expect(first.created > 20, "\(first.summary)")

            // Witnesses: namespaces, fabric links with group and tag, addresses, tc classes.
            let netns = try sh(["ip", "netns", "list"])
            for host in ["acme-web", "acme-db", "globex-app"] { #expect(netns.contains("\(name)-\(host)")) }
            let links = try sh(["ip", "-n", fabricNS.name!, "-d", "link", "show"])
            #expect(links.contains("\(name)-web-net0"))
            #expect(links.contains("alias quiver:\(name)/vnic/acme/web/net0"))
            #expect(links.contains("master \(name)-sw0"))
            let addrs = try sh(["ip", "-n", "\(name)-acme-web", "addr", "show", "dev", "net0"])
            #expect(addrs.contains("inet 10.61.0.11/24"))
            #expect(try sh(["ip", "-n", "\(name)-acme-web", "route"]).contains("default via 10.61.0.1 dev net0"))
            let classes = try sh(["tc", "-n", fabricNS.name!, "class", "show", "dev", "\(name)-acme-f"])
            #expect(classes.contains("rate 80Mbit ceil 80Mbit"))
            #expect(classes.contains("rate 10Mbit ceil 50Mbit"))
            // Same-tenant endpoints reach each other through the fabric.
            let rtt = try UDPRoundTrip(from: .named("\(name)-acme-web"), to: .named("\(name)-acme-db"),
                                       address: try IPAddress("10.61.0.12"), count: 5, interval: 0.01).run()
            #expect(rtt.lost == 0)
            // Isolation: acme cannot reach globex on the same switch.
            let cross = try UDPRoundTrip(from: .named("\(name)-acme-web"), to: .named("\(name)-globex-app"),
                                         address: try IPAddress("10.61.0.21"), count: 2, interval: 0.01).run()
            #expect(cross.lost == 2)
            // The rules: one table, one copy of each VNIC's chain (witness: nft).
            let nft = ["ip", "netns", "exec", fabricNS.name!, "nft"]
            let table = try sh(nft + ["list", "table", "bridge", "quiver-\(name)"])
            #expect(table.contains("comment \"quiver:\(name)/ "))
            let rulesBefore = table.components(separatedBy: "\n").count
            for dev in ["web-net0", "db-net0", "app-net0"] {
                #expect(table.components(separatedBy: "chain vnic/\(name)-\(dev) {").count == 2, "one chain for \(dev)")
            }

            let rows = try fabric.show(t)
            #expect(rows.count == 3)
            #expect(rows.allSatisfy { $0.state == "up" })
            let dbMAC = rows.first { $0.host == "db" }!.macaddress

            // Unchanged file: nothing to do.
            let again = try fabric.apply(t)
            #expect(again.isNoOp, "\(again.summary): \(again.plan.operations)")
            #expect(try sh(nft + ["list", "table", "bridge", "quiver-\(name)"]).components(separatedBy: "\n").count == rulesBefore)

            // Edit a cap and an address: changed in place, the devices are the same ones.
            let webIndex = try fabric.handle.link(named: try InterfaceName(validating: "\(name)-web-net0")).index
            let edited = try TopologyParser.parse(Self.topologyText(name, webMaxbw: "30M", dbIP: "10.61.0.13/24"), file: "\(name).yaml")
            let change = try fabric.apply(edited)
            #expect(change.changed > 0)
            #expect(try fabric.handle.link(named: try InterfaceName(validating: "\(name)-web-net0")).index == webIndex)
            #expect(try sh(["tc", "-n", fabricNS.name!, "class", "show", "dev", "\(name)-acme-f"]).contains("rate 10Mbit ceil 30Mbit"))
            let dbAddrs = try sh(["ip", "-n", "\(name)-acme-db", "addr", "show", "dev", "net0"])
            #expect(dbAddrs.contains("inet 10.61.0.13/24") && !dbAddrs.contains("10.61.0.12"))
            #expect(try fabric.show(edited).first { $0.host == "db" }!.macaddress == dbMAC, "a random MAC is kept")
            #expect(try fabric.apply(edited).isNoOp)

            // Destroy: nothing of the topology remains.
            let gone = try fabric.destroy(topology: name)
            #expect(gone.deleted >= 10)
            #expect(try fabric.handle.links().map(\.name) == ["lo"])
            #expect(!NetworkNamespace.listNamed().contains { $0.hasPrefix(name + "-") })
            #expect(Journal.load(name) == nil)
            #expect(!FileManager.default.fileExists(atPath: "\(Journal.directory)/\(name).lock"), "no lock file left")
            #expect(try fabric.destroy(topology: name).deleted == 0)
            #expect(try sh(nft + ["list", "tables"]).isEmpty, "no nftables table left")
        }
    }

    @Test func foreignObjectIsAConflictAndNothingChanges() throws {
        let name = Self.uniqueName()
        try withFabricNamespace { _, fabric in
            try fabric.handle.addLink(try InterfaceName(validating: "\(name)-sw0"), Bridge())
            let t = try TopologyParser.parse(Self.topologyText(name), file: "\(name).yaml")
            let e = #expect(throws: ConflictList.self) { try fabric.apply(t) }
            #expect(e?.description.contains("link \(name)-sw0 already exists and was not created by Quiver") == true)
            #expect(!NetworkNamespace.listNamed().contains { $0.hasPrefix(name + "-") }, "nothing created")
            #expect(Set(try fabric.handle.links().map(\.name)) == ["\(name)-sw0", "lo"])
            // Destroy does not touch it either.
            #expect(try fabric.destroy(topology: name).deleted == 0)
            #expect(try fabric.handle.linkIfPresent(named: try InterfaceName(validating: "\(name)-sw0")) != nil)
        }
    }
}
