import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology
import Testing

/// Pure: the plan from (kernel state, file) — add, change, remove, no-op, conflicts.
@Suite struct PlannerTests {
    let topology = try! TopologyParser.parse("""
    name: pl
    switches:
      - name: sw0
    tenants:
      - name: acme
        hosts:
          - name: web
            vnics:
              - {name: net0, over: sw0, ips: [10.1.0.11/24], gateway: 10.1.0.1}
    """, file: "p.yaml")

    var desired: DesiredFabric { DesiredFabric(topology) }

    @Test func emptyKernelMeansCreateEverythingInOrder() {
        let plan = Planner.plan(current: CurrentFabric(links: [], hosts: [:]), desired: desired)
        #expect(plan.conflicts.isEmpty)
        #expect(plan.operations.map(\.description) == [
            "create namespace pl-acme-web",
            "create switch pl-sw0",
            "create vnic web/net0 (pl-web-net0 on pl-sw0)",
            "add address 10.1.0.11/24 to net0 in pl-acme-web",
            "set default route via 10.1.0.1 dev net0 in pl-acme-web",
            "install isolation and protection rules",
        ])
    }

    @Test func matchingKernelIsANoOpAndEditsAreInPlace() throws {
        var state = applied()
        #expect(Planner.plan(current: state, desired: desired).operations.isEmpty)

        // The address in the file changed: one add, one remove; nothing re-created. The address
        // is also what ip-nospoof allows, so the rules follow.
        var edited = topology
        edited.tenants[0].hosts[0].vnics[0].ips = [try IPPrefix("10.1.0.12/24")]
        let plan = Planner.plan(current: state, desired: DesiredFabric(edited))
        #expect(plan.operations.map(\.description) == [
            "remove address 10.1.0.11/24 from net0 in pl-acme-web",
            "add address 10.1.0.12/24 to net0 in pl-acme-web",
            "replace isolation and protection rules",
        ])

        // Protection edited: the table is replaced (whole, in one transaction).
        edited = topology
        edited.tenants[0].hosts[0].vnics[0].protection = [.macNospoof]
        #expect(Planner.plan(current: state, desired: DesiredFabric(edited)).operations == [.installProtection(replacing: true)])
        // Table lost some chains (same comment, smaller use): replaced too.
        var tampered = state
        if case .installed(let c, let u) = state.firewall { tampered.firewall = .installed(comment: c, use: u - 1) }
        #expect(Planner.plan(current: tampered, desired: desired).operations == [.installProtection(replacing: true)])

        // A switch dropped from the file is deleted; the VNIC moves.
        state.links.append(link("pl-old", index: 9, group: desired.group))
        let cleanup = Planner.plan(current: state, desired: desired)
        #expect(cleanup.operations.map(\.description) == ["delete link pl-old"])
    }

    @Test func foreignObjectsAreConflictsNotAdopted() {
        var state = CurrentFabric(links: [link("pl-sw0", index: 3, group: 0)], hosts: [:])
        var plan = Planner.plan(current: state, desired: desired)
        #expect(plan.conflicts.map(\.object) == ["link pl-sw0"])
        #expect(plan.conflicts.first?.description.contains("not created by Quiver") == true)

        // An untagged namespace of the wanted name is foreign — unless the journal says an
        // interrupted apply was creating it.
        state = CurrentFabric(links: [], hosts: ["pl-acme-web": .init(tagged: false, links: [], addresses: [], routes: [])])
        plan = Planner.plan(current: state, desired: desired)
        #expect(plan.conflicts.map(\.object) == ["network namespace pl-acme-web"])
        plan = Planner.plan(current: state, desired: desired, pendingNamespaces: ["pl-acme-web"])
        #expect(plan.conflicts.isEmpty)
        #expect(!plan.operations.contains(.createNamespace("pl-acme-web")))

        // A foreign nftables table of the topology's name.
        state = applied()
        state.firewall = .foreign(family: "bridge", comment: "someone else's")
        plan = Planner.plan(current: state, desired: desired)
        #expect(plan.conflicts.map(\.object) == ["nftables table bridge quiver-pl"])
    }

    @Test func ownedNamespacesTheFileDroppedAreDeleted() {
        var state = applied()
        state.hosts["pl-acme-old"] = .init(tagged: true, links: [], addresses: [], routes: [])
        state.hosts["pl-acme-foreign"] = .init(tagged: false, links: [], addresses: [], routes: [])
        let ops = Planner.plan(current: state, desired: desired).operations
        #expect(ops == [.deleteNamespace("pl-acme-old")])
    }

    /// The kernel state right after applying `topology`.
    func applied() -> CurrentFabric {
        let g = desired.group
        var bridge = link("pl-sw0", index: 2, group: g)
        bridge.alias = "quiver:pl/switch/sw0"
        var vnic = link("pl-web-net0", index: 3, group: g)
        vnic.masterIndex = 2
        var peer = link("net0", index: 2, group: 0)
        peer.mac = desired.vnics[0].mac
        peer.flags = 1 // IFF_UP
        let addr = try! Address(prefix: IPPrefix("10.1.0.11/24"), linkIndex: 2)
        let route = Route(destination: nil, gateway: try! IPAddress("10.1.0.1"), outputIndex: 2)
        var state = CurrentFabric(links: [bridge, vnic],
                                  hosts: ["pl-acme-web": .init(tagged: true, links: [link("lo", index: 1, group: 0), peer], addresses: [addr], routes: [route])])
        let rules = desired.ruleset()!
        state.firewall = .installed(comment: rules.comment, use: rules.expectedUse)
        return state
    }

    func link(_ name: String, index: Int32, group: UInt32) -> Link {
        Link(name: name, index: index, group: group)
    }
}
