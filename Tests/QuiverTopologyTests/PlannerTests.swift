import Foundation
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology
import QuiverVM
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

    var desired: DesiredFabric { try! DesiredFabric(topology) }

    @Test func emptyKernelMeansCreateEverythingInOrder() {
        let plan = Planner.plan(current: CurrentFabric(links: [], hosts: [:]), desired: desired)
        #expect(plan.conflicts.isEmpty)
        // Every request apply sends is a step, in its phase: the endpoint's link-local mode and
        // the port's coming up too (they are not counted on their own).
        #expect(plan.phases.map { "\($0.kind.rawValue): " + $0.steps.map(\.description).joined(separator: "; ") } == [
            // (Every MAC is known: the rules go in from the start, beside the rest.)
            "rules: install isolation and protection rules",
            "namespaces: create namespace pl-acme-web",
            "switches and IFBs: create switch pl-sw0",
            "create VNICs: create vnic web/net0 (pl-web-net0 on pl-sw0)",
            "host addresses and routes: give new net0 in pl-acme-web no IPv6 link-local address; "
                + "add address 10.1.0.11/24 to net0 in pl-acme-web; set default route via 10.1.0.1 dev net0 in pl-acme-web",
            "ports up: bring new port pl-web-net0 up",
        ])
        #expect(plan.operations.compactMap(\.verb).count == 6)

        // A `mac: random` VNIC made now: the rules name the MAC the kernel picks, so they wait
        // for the VNICs (and still go in before the ports come up).
        var random = topology
        random.tenants[0].hosts[0].vnics[0].mac = .random
        let late = Planner.plan(current: CurrentFabric(links: [], hosts: [:]), desired: try! DesiredFabric(random))
        #expect(late.phases.map(\.kind) == [.namespaces, .switches, .createVNICs, .hosts, .rulesAfterVNICs, .portsUp])
        // Once made, its MAC is known: a change to the rules goes in from the start.
        var made = applied()
        made.firewall = .absent
        #expect(Planner.plan(current: made, desired: try! DesiredFabric(random)).phases.map(\.kind) == [.rules])
    }

    @Test func matchingKernelIsANoOpAndEditsAreInPlace() throws {
        var state = applied()
        #expect(Planner.plan(current: state, desired: desired).operations.isEmpty)

        // The address in the file changed: one add, one remove; nothing re-created. The address
        // is also what ip-nospoof allows, so the rules follow (in the order apply runs them: the
        // rules' thread starts first, every MAC being known).
        var edited = topology
        edited.tenants[0].hosts[0].vnics[0].ips = [try IPPrefix("10.1.0.12/24")]
        let plan = Planner.plan(current: state, desired: try DesiredFabric(edited))
        #expect(plan.operations.map(\.description) == [
            "replace isolation and protection rules",
            "remove address 10.1.0.11/24 from net0 in pl-acme-web",
            "add address 10.1.0.12/24 to net0 in pl-acme-web",
        ])

        // Protection edited: the table is replaced (whole, in one transaction).
        edited = topology
        edited.tenants[0].hosts[0].vnics[0].protection = [.macNospoof]
        #expect(Planner.plan(current: state, desired: try DesiredFabric(edited)).operations == [.installProtection(replacing: true)])
        // Table lost some chains (same comment, smaller use): replaced too.
        var tampered = state
        if case .installed(let c, let u) = state.firewall { tampered.firewall = .installed(comment: c, use: u - 1) }
        #expect(Planner.plan(current: tampered, desired: desired).operations == [.installProtection(replacing: true)])

        // A switch dropped from the file is deleted; the VNIC moves.
        var old = link("pl-old", index: 9, group: desired.group)
        old.alias = "quiver:pl/switch/old"
        state.links.append(old)
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

        // A link of the endpoint's name in the host, without the port: not ours (a veth end
        // would have gone with its peer), so the VNIC is not created over it.
        state = applied()
        state.links.removeAll { $0.name == "pl-web-net0" }
        plan = Planner.plan(current: state, desired: desired)
        #expect(plan.conflicts.map(\.object) == ["link net0 in network namespace pl-acme-web"])
        #expect(plan.conflicts.first?.description.contains("without the port pl-web-net0") == true)

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

    /// A guest with one macvtap over a switch and one over a host link: where they go, how
    /// they are protected and capped, and when the guest must restart.
    @Test func macvtapNICsAreCheckedForKindAndLowerLink() throws {
        let t = try TopologyParser.parse("""
        name: pv
        switches:
          - name: sw0
        tenants:
          - name: acme
            hosts:
              - name: g1
                kind: vm
                kernel: /etc/hostname
                vnics:
                  - {name: eth0, over: sw0, mode: macvtap, ips: [10.1.0.12/24], maxbw: 10M}
                  - {name: eth1, over: upl0, mode: macvtap, ips: [10.2.0.12/24]}
        """, file: "v.yaml")
        let d = try DesiredFabric(t)
        let nics = d.vms[0].taps
        #expect(nics.map(\.bridge) == ["pv-sw0", "upl0"] && nics.map(\.overSwitch) == [true, false] && nics.allSatisfy { $0.macvtap })
        #expect(d.vnics.allSatisfy { $0.isMacvtap })
        #expect(d.ruleset()!.ports.allSatisfy { $0.attachment == .macvtap })
        #expect(d.capGroups[0].members.map(\.facesEndpoint) == [true])

        // The kernel as apply leaves it: switch, the operator's uplink, two macvtaps, the guest running.
        var sw = link("pv-sw0", index: 2, group: d.group)
        sw.data = .bridge(Bridge(stp: false))
        let uplink = link("upl0", index: 3, group: 0)
        sw.alias = "quiver:pv/switch/sw0"
        var m0 = link("pv-g1-eth0", index: 1001, group: d.group)
        m0.data = .macvtap(Macvtap(lowerIndex: 2))
        m0.alias = "quiver:pv/vnic/acme/g1/eth0"
        var m1 = link("pv-g1-eth1", index: 1002, group: d.group)
        m1.data = .macvtap(Macvtap(lowerIndex: 3))
        m1.alias = "quiver:pv/vnic/acme/g1/eth1"
        var state = CurrentFabric(links: [sw, uplink, m0, m1], hosts: [:])
        let spec = try JSONSerialization.jsonObject(with: JSONEncoder().encode(d.vms[0].spec))
        let status: [String: Any] = ["state": "running", "record": [
            "name": "pv-g1", "pid": 1, "accel": "tcg", "backend": "userspace", "nics": (spec as! [String: Any])["nics"]!,
            "directory": d.vms[0].directory, "notices": [String](), "startedAt": 0, "spec": spec,
        ]]
        state.vms["g1"] = try JSONDecoder().decode(VMStatus.self, from: JSONSerialization.data(withJSONObject: status))
        func guestOps(_ s: CurrentFabric) -> [String] {
            Planner.plan(current: s, desired: d).operations.map(\.description).filter { $0.contains("vm g1") }
        }
        #expect(guestOps(state) == [])
        // The guest's NICs found down (an apply killed before its ports-up phase) come up; up,
        // they are left alone.
        #expect(Planner.plan(current: state, desired: d).steps(.portsUp) == [.bringUpPort("pv-g1-eth0"), .bringUpPort("pv-g1-eth1")])
        state.links[2].flags = 1
        state.links[3].flags = 1
        #expect(Planner.plan(current: state, desired: d).steps(.portsUp) == [])
        // A NIC on the wrong lower link, or a device of another kind where a macvtap belongs (the
        // NIC's mode changed): the guest restarts.
        var moved = state
        moved.links[3].data = .macvtap(Macvtap(lowerIndex: 2))
        #expect(guestOps(moved) == ["stop vm g1", "start vm g1"])
        // A restarted guest's NICs are made down and come up with the other new ports.
        #expect(Planner.plan(current: moved, desired: d).steps(.portsUp) == [.openPort("pv-g1-eth0"), .openPort("pv-g1-eth1")])
        var other = state
        other.links[2].data = .veth
        #expect(guestOps(other) == ["stop vm g1", "start vm g1"])
        // The operator's uplink is never adopted, changed or deleted.
        #expect(!Planner.plan(current: state, desired: d).operations.map(\.description).contains { $0.contains("upl0") })
    }

    /// The kernel state right after applying `topology`.
    /// IPv6 link-local: an IPv4-only endpoint found with one loses it (mode, then the address);
    /// a file asking for one adds the kernel's own (from the MAC); a fabric link found with one
    /// is turned off. Links whose mode is unknown (no IPv6 state read) are left alone.
    @Test func ipv6LinkLocalFollowsTheFile() throws {
        var state = applied()
        #expect(Planner.plan(current: state, desired: desired).operations.isEmpty, "mode unknown: nothing to do")
        let eui64: UInt8 = 0, none: UInt8 = 1
        let mac = desired.vnics[0].mac!
        state.hosts["pl-acme-web"]!.links[1].ipv6AddressGeneration = eui64
        state.hosts["pl-acme-web"]!.addresses.append(Address(prefix: mac.ipv6LinkLocal, linkIndex: 2, scope: 253))
        state.links[1].ipv6AddressGeneration = eui64
        #expect(Planner.plan(current: state, desired: desired).operations.map(\.description) == [
            "turn IPv6 link-local off on net0 in pl-acme-web",
            "turn IPv6 link-local off on pl-web-net0",
            "remove address \(mac.ipv6LinkLocal) from net0 in pl-acme-web",
        ])
        state.links[1].ipv6AddressGeneration = none
        state.hosts["pl-acme-web"]!.links[1].ipv6AddressGeneration = none
        state.hosts["pl-acme-web"]!.addresses.removeLast()
        #expect(Planner.plan(current: state, desired: desired).operations.isEmpty)

        var edited = topology
        edited.tenants[0].hosts[0].vnics[0].linkLocal = true
        // The VNIC now speaks IPv6, so its rules gain the neighbour discovery checks (a VNIC
        // without IPv6 may send none).
        #expect(Planner.plan(current: state, desired: try DesiredFabric(edited)).operations.map(\.description) == [
            "replace isolation and protection rules",
            "turn IPv6 link-local on on net0 in pl-acme-web",
            "add address \(mac.ipv6LinkLocal) to net0 in pl-acme-web",
        ])
        // An IPv6 address in the file means a link-local one too (auto).
        edited.tenants[0].hosts[0].vnics[0].linkLocal = nil
        edited.tenants[0].hosts[0].vnics[0].ips.append(try IPPrefix("fd01::11/64"))
        #expect(Planner.plan(current: state, desired: try DesiredFabric(edited)).operations.contains(.setLinkLocal(namespace: "pl-acme-web", device: "net0", on: true)))
    }

    /// Each kind of edit lands in its phase, in the order the phases run; a matching kernel has
    /// no phase at all.
    @Test func editsLandInTheirPhases() throws {
        let state = applied()
        func phases(_ edit: (inout Topology) throws -> Void, _ s: CurrentFabric? = nil) throws -> [String] {
            var t = topology
            try edit(&t)
            return Planner.plan(current: s ?? state, desired: try DesiredFabric(t)).phases.map {
                "\($0.kind.rawValue): " + $0.steps.map(\.description).joined(separator: "; ")
            }
        }
        #expect(try phases { _ in } == [])
        #expect(Planner.plan(current: state, desired: desired).isEmpty)

        // A VNIC moved to a new switch: the switch, the move, the port up once rules are in.
        #expect(try phases { t in
            var sw1 = t.switches[0]
            sw1.name = "sw1"
            t.switches.append(sw1)
            t.tenants[0].hosts[0].vnics[0].over = "sw1"
        } == [
            "switches and IFBs: create switch pl-sw1",
            "move VNICs: change vnic pl-web-net0: switch → pl-sw1",
            "ports up: bring new port pl-web-net0 up",
        ])

        // A tenant cap: its two IFBs go with the switches, its classes in the caps phase.
        let names = KernelNames("pl")
        #expect(try phases { t in t.tenants[0].maxbw = try Bitrate("10M") } == [
            "switches and IFBs: create IFB \(names.ifbFrom(tenant: "acme")); create IFB \(names.ifbTo(tenant: "acme"))",
            "caps: apply caps of tenant acme",
        ])

        // The host dropped: its port and namespace go, and with no VNIC left, the rules.
        #expect(try phases { t in t.tenants[0].hosts = [] } == [
            "delete links: delete link pl-web-net0",
            "delete namespaces: delete namespace pl-acme-web",
            "rules: remove isolation and protection rules",
        ])

        // An endpoint found down without its route: the route is set once it is up, in the
        // same phase and batch.
        var down = state
        down.hosts["pl-acme-web"]!.links[1].flags = 0
        down.hosts["pl-acme-web"]!.routes = []
        #expect(try phases({ _ in }, down) == [
            "ports up: bring net0 up in pl-acme-web; set default route via 10.1.0.1 dev net0 in pl-acme-web",
        ])
    }

    /// A port found down (an apply killed before the last step brought it up) comes up.
    @Test func portFoundDownIsBroughtUp() {
        var state = applied()
        state.links[1].flags = 0
        #expect(Planner.plan(current: state, desired: desired).operations == [.bringUpPort("pl-web-net0")])
    }

    func applied() -> CurrentFabric {
        let g = desired.group
        var bridge = link("pl-sw0", index: 2, group: g)
        bridge.alias = "quiver:pl/switch/sw0"
        var vnic = link("pl-web-net0", index: 3, group: g)
        vnic.alias = "quiver:pl/vnic/acme/web/net0"
        vnic.masterIndex = 2
        vnic.flags = 1 // IFF_UP
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

    /// DHCP servers: started when missing, replaced when dead or changed, left alone when
    /// running as configured, stopped when the file no longer asks for them.
    @Test func dhcpServersFollowTheFile() throws {
        let t = try TopologyParser.parse("""
        name: pd
        switches:
          - {name: sw0, dhcp: true}
        tenants:
          - name: acme
            hosts:
              - {name: g1, kind: vm, kernel: /etc/hostname, vnics: [{name: eth0, over: sw0, ips: [10.2.0.5/24], gateway: 10.2.0.1}]}
        """, file: "d.yaml")
        let d = try DesiredFabric(t)
        let server = try #require(d.dhcpServers.first)
        #expect(server.directory == "/run/quiver/dhcp/pd/acme-sw0" && server.namespace == "pd-acme-dhcp-sw0")
        func steps(_ have: [String: String?], desired: DesiredFabric? = nil) -> [String] {
            var c = CurrentFabric(links: [], hosts: [:])
            c.dhcp = have
            return Planner.plan(current: c, desired: desired ?? d).operations.compactMap { o -> String? in
                switch o { case .startDHCP, .stopDHCP: return o.description; default: return nil }
            }
        }
        let start = "start the DHCP server of tenant acme on switch sw0 of topology pd (1 static leases)"
        let stop = "stop the DHCP server in /run/quiver/dhcp/pd/acme-sw0"
        #expect(steps([:]) == [start])
        #expect(steps([server.directory: .some(server.config)]) == [])
        #expect(steps([server.directory: String?.none]) == [stop, start], "a dead server is replaced")
        #expect(steps([server.directory: .some("# older\n")]) == [stop, start], "a changed one too")
        let plain = try DesiredFabric(try TopologyParser.parse("name: pd\nswitches: [{name: sw0}]\ntenants:\n  - {name: acme, hosts: [{name: h, vnics: [{name: n, over: sw0}]}]}\n", file: "d.yaml"))
        #expect(steps([server.directory: .some(server.config)], desired: plain) == [stop])
    }
}
