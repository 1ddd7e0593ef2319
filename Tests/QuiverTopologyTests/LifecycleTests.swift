import Foundation
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverTestSupport
import QuiverTopology
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
            // The dry run's phases are the ones apply then runs, in that order.
            let dry = try fabric.apply(t, dryRun: true)
            #expect(dry.executed.isEmpty && dry.isNoOp)
            // (db's MAC is the kernel's pick, so the rules wait for the VNICs.)
            #expect(dry.plan.phases.map(\.kind) == [.namespaces, .switches, .createVNICs, .hosts, .rulesAfterVNICs, .caps, .portsUp])
            let first = try fabric.apply(t)
            #expect(first.created > 20, "\(first.summary)")
            #expect(first.executed == dry.plan.phases.map(\.kind))
            #expect(first.plan == dry.plan)

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
            #expect(again.executed == [.caps], "only the caps' own diff runs: \(again.plan.phases)")
            #expect(try sh(nft + ["list", "table", "bridge", "quiver-\(name)"]).components(separatedBy: "\n").count == rulesBefore)

            // Edit a cap and an address: changed in place, the devices are the same ones.
            let webIndex = try fabric.handle.link(named: try InterfaceName(validating: "\(name)-web-net0")).index
            let edited = try TopologyParser.parse(Self.topologyText(name, webMaxbw: "30M", dbIP: "10.61.0.13/24"), file: "\(name).yaml")
            let planned = try fabric.plan(edited)
            #expect(planned.phases.map(\.kind) == [.rules, .hosts, .caps], "\(planned.phases)")
            let change = try fabric.apply(edited)
            #expect(change.changed > 0)
            #expect(change.executed == planned.phases.map(\.kind))
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
            #expect(try Journal.load(TopologyName(validating: name)) == nil)
            #expect(!FileManager.default.fileExists(atPath: "\(Journal.directoryPath)/\(TopologyLock.fileName(try TopologyName(validating: name)))"), "no lock file left")
            #expect(try fabric.destroy(topology: name).deleted == 0)
            #expect(try sh(nft + ["list", "tables"]).isEmpty, "no nftables table left")
        }
    }

    /// IPv6 link-local addresses: only on endpoints that have an IPv6 address or ask for one,
    /// never on fabric links; drift in either direction is repaired, an edit applies in place.
    @Test func ipv6LinkLocalOnlyWhereWanted() throws {
        let name = Self.uniqueName()
        func text(dbLinkLocal: String) -> String {
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
                      - {name: net0, over: sw0, ips: [10.62.0.11/24, fd62::11/64]}
                  - name: db
                    vnics:
                      - {name: net0, over: sw0, ips: [10.62.0.12/24], link-local: \(dbLinkLocal)}
            """
        }
        try withFabricNamespace { fabricNS, fabric in
            let t = try TopologyParser.parse(text(dbLinkLocal: "auto"), file: "\(name).yaml")
            _ = try fabric.apply(t)
            let fab = fabricNS.name!
            func v6(_ ns: String, _ dev: String? = nil) throws -> String {
                try sh(["ip", "-n", ns, "-6", "addr", "show"] + (dev.map { ["dev", $0] } ?? []))
            }
            let webMAC = try NetlinkHandle(namespace: .named("\(name)-acme-web")).link(named: "net0").mac!
            #expect(try v6("\(name)-acme-web", "net0").contains(webMAC.ipv6LinkLocal.description), "an endpoint with an IPv6 address keeps its link-local one")
            #expect(try v6("\(name)-acme-db", "net0").isEmpty, "an IPv4-only endpoint has no IPv6 address at all")
            let fabricV6 = try v6(fab)
            #expect(!fabricV6.contains("fe80"), "no fabric link has a link-local address: \(fabricV6)")
            let fabricLinks = try sh(["ip", "-n", fab, "-d", "link", "show"])
            for dev in ["\(name)-sw0", "\(name)-web-net0", "\(name)-db-net0", "\(name)-acme-f", "\(name)-acme-t"] {
                let line = fabricLinks.components(separatedBy: "\n").drop { !$0.contains(" \(dev):") && !$0.contains(" \(dev)@") }
                    .prefix { !$0.isEmpty }.prefix(12).joined(separator: "\n")
                #expect(line.contains("addrgenmode none"), "\(dev): \(line)")
            }
            #expect(try fabric.apply(t).isNoOp)

            // Drift: a port given a mode and an address by hand, the db endpoint given its own.
            _ = try sh(["ip", "-n", fab, "link", "set", "\(name)-db-net0", "addrgenmode", "eui64"])
            _ = try sh(["ip", "-n", fab, "addr", "add", "fe80::62/64", "dev", "\(name)-db-net0"])
            _ = try sh(["ip", "-n", "\(name)-acme-db", "link", "set", "net0", "addrgenmode", "eui64"])
            _ = try sh(["ip", "-n", "\(name)-acme-db", "addr", "add", "fe80::12/64", "dev", "net0"])
            let repair = try fabric.apply(t)
            #expect(repair.plan.operations.contains(.setLinkLocal(namespace: nil, device: try InterfaceName(validating: "\(name)-db-net0"), on: false)))
            #expect(repair.plan.operations.contains(.setLinkLocal(namespace: "\(name)-acme-db", device: "net0", on: false)))
            #expect(!(try v6(fab)).contains("fe80"))
            #expect(try v6("\(name)-acme-db", "net0").isEmpty)
            #expect(try fabric.apply(t).isNoOp)

            // Edit: db asks for a link-local address; it gets the one the kernel would make.
            let on = try TopologyParser.parse(text(dbLinkLocal: "on"), file: "\(name).yaml")
            let dbMAC = try NetlinkHandle(namespace: .named("\(name)-acme-db")).link(named: "net0").mac!
            let change = try fabric.apply(on)
            // The mode and the address; and the rules, which now let db's IPv6 through.
            #expect(change.changed == 2 && change.created == 1, "\(change.summary): \(change.plan.operations)")
            #expect(try v6("\(name)-acme-db", "net0").contains(dbMAC.ipv6LinkLocal.description))
            #expect(try fabric.apply(on).isNoOp)
            _ = try fabric.destroy(topology: name)
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
