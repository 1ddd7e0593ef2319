import CNetlink
import Foundation
@testable import QuiverFabric
import QuiverKernel
import QuiverProtection
import QuiverTopology
import Testing

/// Pure: multi-node files — what `nodes:`, `node:` and `vni:` accept and the exact error for each
/// hostile value; how a file is placed on a node (segments, VNIs, remote entries); and how the
/// planner diffs a node's segments and forwarding entries.
@Suite struct MultiNodeTests {
    /// Two nodes, acme on both and beta on n2, one switch; `nodes`/`hosts` replace the parts.
    static func file(nodes: String? = nil, sw: String = "{name: sw0}", web: String = "node: n1", db: String = "node: n2",
                     extra: String = "") -> String {
        """
        name: mn
        nodes:
        \(nodes ?? "  - {name: n1, underlay: 192.0.2.1}\n  - {name: n2, underlay: 192.0.2.2}")
        switches:
          - \(sw)
        tenants:
          - name: acme
            hosts:
              - {name: web, \(web), vnics: [{name: net0, over: sw0, ips: [10.1.0.1/24, "fd01::1/64"]}]}
              - {name: db, \(db), vnics: [{name: net0, over: sw0, ips: [10.1.0.2/24]}]}
          - name: beta
            hosts:
              - {name: api, node: n2, vnics: [{name: net0, over: sw0, ips: [10.1.0.3/24]}]}
        \(extra)
        """
    }

    func errors(_ text: String) -> String {
        do { return "valid: \(try TopologyParser.parse(text, file: "m.yaml").name)" } catch { return "\(error)" }
    }

    @Test(arguments: [
        ("  - {name: n1, underlay: 192.0.2.1}\n  - {name: n1, underlay: 192.0.2.2}", "node \"n1\" is defined twice"),
        ("  - {name: n1, underlay: 192.0.2.1}\n  - {name: n2, underlay: 192.0.2.1}", "node n2: underlay 192.0.2.1 is also node n1's"),
        ("  - {name: n1, underlay: 0.0.0.0}\n  - {name: n2, underlay: 192.0.2.2}", "node n1: underlay 0.0.0.0 is not a unicast address"),
        ("  - {name: n1, underlay: 224.0.0.5}\n  - {name: n2, underlay: 192.0.2.2}", "node n1: underlay 224.0.0.5 is not a unicast address"),
        ("  - {name: n1, underlay: 127.0.0.1}\n  - {name: n2, underlay: 192.0.2.2}", "node n1: underlay 127.0.0.1 is not a unicast address"),
        ("  - {name: n1, underlay: 192.0.2.1}\n  - {name: n2, underlay: \"2001:db8::2\"}", "the nodes' underlay addresses mix IPv4 and IPv6"),
        ("  - {name: n1, underlay: 192.0.2.1}\n  - {name: n2}", "node n2 has no `underlay:`"),
        ("  - {name: n1, underlay: \"192.0.2.1; rm -rf /\"}\n  - {name: n2, underlay: 192.0.2.2}", "underlay"),
        ("  - {name: \"n-1\", underlay: 192.0.2.1}\n  - {name: n2, underlay: 192.0.2.2}", "n-1"),
        ("  - {name: n1, underlay: 192.0.2.1, vni: 5}\n  - {name: n2, underlay: 192.0.2.2}", "unknown key `vni`"),
    ])
    func hostileNodes(_ nodes: String, _ expected: String) {
        let e = errors(Self.file(nodes: nodes))
        #expect(e.contains(expected), "\(e)")
        #expect(!e.hasPrefix("valid"))
    }

    @Test func hostsAndSwitchesOfAMultiNodeFile() {
        #expect(errors(Self.file()) == "valid: mn")
        // Every host says where it runs, and it is a declared node.
        #expect(errors(Self.file(web: "kind: netns")).contains("m.yaml:10:9: error: host web has no `node:`; a file with `nodes:` places every host"))
        #expect(errors(Self.file(web: "node: n9")).contains("host web: unknown node \"n9\" (nodes are n1, n2)"))
        #expect(errors(Self.file(web: "node: \"../../etc\"")).contains("host web: unknown node"))
        // `node:` and `vni:` need `nodes:`.
        let single = Self.file().replacingOccurrences(of: "nodes:\n  - {name: n1, underlay: 192.0.2.1}\n  - {name: n2, underlay: 192.0.2.2}\n", with: "")
        #expect(errors(single).contains("host web has `node:` but the file has no `nodes:`"))
        // VNIs: in range, no overlap, no random MACs, no DHCP, no macvtaps on a spanning switch.
        #expect(errors(Self.file(sw: "{name: sw0, vni: 16777215}")).contains("tenant beta's VNI 16777216 is above 16777215"))
        #expect(errors(Self.file(sw: "{name: sw0, vni: 0}")) == "m.yaml:6:22: error: vni \"0\" must be a number from 1 to 16777215")
        #expect(errors(Self.file(sw: "{name: sw0, vni: 0x64}")).contains("vni \"0x64\" must be a number from 1 to 16777215"))
        #expect(errors(Self.file(sw: "{name: sw0, vni: 7}", extra: "")) == "valid: mn")
        #expect(errors(Self.file(sw: "{name: sw0, dhcp: true}")).contains("switch sw0: `dhcp: true` is not supported in a file with `nodes:` yet"))
        let random = Self.file().replacingOccurrences(of: "ips: [10.1.0.2/24]", with: "ips: [10.1.0.2/24], mac: random")
        #expect(errors(random).contains("VNIC db/net0 is on switch sw0, which spans nodes, and has `mac: random`"))
        let twoSwitches = Self.file(sw: "{name: sw0, vni: 100}\n  - {name: sw1, vni: 100}")
            .replacingOccurrences(of: "api, node: n2, vnics: [{name: net0, over: sw0", with: "api, node: n2, vnics: [{name: net0, over: sw1")
            .replacingOccurrences(of: "db, node: n2, vnics: [{name: net0, over: sw0, ips: [10.1.0.2/24]}", with: "db, node: n2, vnics: [{name: net0, over: sw0, ips: [10.1.0.2/24]}, {name: net1, over: sw1, ips: [10.2.0.2/24]}")
            .replacingOccurrences(of: "web, node: n1, vnics: [{name: net0, over: sw0, ips: [10.1.0.1/24, \"fd01::1/64\"]}", with: "web, node: n1, vnics: [{name: net0, over: sw0, ips: [10.1.0.1/24, \"fd01::1/64\"]}, {name: net1, over: sw1, ips: [10.2.0.1/24]}")
        #expect(twoSwitches.contains("over: sw1, ips: [10.2.0.1/24]") && twoSwitches.contains("over: sw1, ips: [10.2.0.2/24]"), "\(twoSwitches)")
        #expect(errors(twoSwitches).contains("switch sw1: tenant acme's VNI 100 is also tenant acme on switch sw0's"), "\(errors(twoSwitches))")
    }

    @Test func placementGivesEachNodeItsHostsAndTheOthersEntries() throws {
        let t = try TopologyParser.parse(Self.file(sw: "{name: sw0, vni: 100}"), file: "m.yaml")
        #expect(t.spanningSwitches == ["sw0"])
        #expect(t.vni(switch: "sw0", tenant: "acme") == 100 && t.vni(switch: "sw0", tenant: "beta") == 101)
        let n1 = t.placed(on: "n1")
        #expect(n1.tenants.flatMap(\.hosts).map(\.name) == ["web"])
        #expect(n1.hostsElsewhere == ["db", "api"])
        // Only acme is on n1: one segment, towards n2, with db's MAC and address.
        #expect(n1.segments.count == 1)
        let s = try #require(n1.segments.first)
        #expect(s.tenant == "acme" && s.vni == 100 && s.local.description == "192.0.2.1" && s.peers.map(\.description) == ["192.0.2.2"])
        #expect(s.remotes.map(\.host) == ["db"] && s.remotes[0].mac == KernelNames("mn").autoMAC(tenant: "acme", host: "db", vnic: "net0"))
        // n2 holds both tenants; beta is only there: its segment has no peer and no remote.
        let n2 = t.placed(on: "n2")
        #expect(n2.segments.map(\.tenant) == ["acme", "beta"])
        #expect(n2.segments[1].peers.isEmpty && n2.segments[1].remotes.isEmpty)

        // The kernel objects of n1: a VXLAN device on the switch, MTU 1450 for it and web's VNIC,
        // a switch MAC of its own, the entries, node-scoped tags, and the rules' extra parts.
        let d = try DesiredFabric(n1, underlayMTU: 1500)
        #expect(d.segments.map(\.device.rawValue) == [KernelNames("mn").segmentDevice(tenant: "acme", switch: "sw0")])
        let g = try #require(d.segments.first)
        #expect(g.mtu == 1450 && d.vnics.first?.mtu == 1450 && g.vxlan.learning == false && g.vxlan.port == 4789)
        #expect(d.bridges.first?.mac == KernelNames("mn", node: "n1").switchMAC("mn-sw0"))
        #expect(g.tag == "quiver:mn@n1/segment/sw0/acme" && d.vnics.first?.tag == "quiver:mn@n1/vnic/acme/web/net0")
        #expect(g.entries.map(\.description) == [
            "\(g.device): 00:00:00:00:00:00 → 192.0.2.2",
            "\(g.device): \(s.remotes[0].mac) → 192.0.2.2",
            "\(g.device): \(s.remotes[0].mac) (bridge)",
            "mn-sw0: 10.1.0.2 is at \(s.remotes[0].mac)",
        ])
        let r = try #require(d.ruleset())
        #expect(r.ports.contains { $0.device == g.device.rawValue && $0.tenant == "acme" && $0.protection.isEmpty })
        #expect(r.suppressed == [SuppressedAddress(address: try IPAddress("10.1.0.2"), tenant: "acme")])
        #expect(r.underlay == UnderlayGuard(vnis: [100], sources: [try IPAddress("192.0.2.1"), try IPAddress("192.0.2.2")]))
        #expect(r.ownerTag == "quiver:mn@n1/")
        // A file without `nodes:` has none of it.
        let plain = try DesiredFabric(try TopologyParser.parse(Self.file().replacingOccurrences(of: "nodes:\n  - {name: n1, underlay: 192.0.2.1}\n  - {name: n2, underlay: 192.0.2.2}\n", with: "").replacingOccurrences(of: "node: n1, ", with: "").replacingOccurrences(of: "node: n2, ", with: ""), file: "p.yaml"))
        #expect(plain.segments.isEmpty && plain.bridges.first?.mac == nil && plain.ruleset()?.underlay == nil && plain.tagPrefix == "quiver:mn/")
    }

    @Test func mtuThatDoesNotFitIsAnErrorAtItsKey() throws {
        let text = Self.file().replacingOccurrences(of: "ips: [10.1.0.2/24]}", with: "ips: [10.1.0.2/24], mtu: 1500}")
        let t = try TopologyParser.parse(text, file: "m.yaml").placed(on: "n2")
        let p = t.mtuProblems(fits: 1450, underlayMTU: 1500)
        #expect(p.map(\.description) == ["m.yaml:11:38: error: VNIC db/net0 has mtu 1500, but a frame on a switch that spans nodes fits 1450 bytes (underlay MTU 1500 less the VXLAN overhead) (lower `mtu` to 1450 or less, or raise the underlay interface's MTU)"])
        #expect(t.mtuProblems(fits: 1500, underlayMTU: 1550).isEmpty)
        let v6 = try IPAddress("2001:db8::1"), v4 = try IPAddress("192.0.2.1")
        #expect(Topology.vxlanOverhead(v6) == 70 && Topology.vxlanOverhead(v4) == 50)
    }

    @Test func plannerAddsAndRemovesOnlyWhatDiffers() throws {
        let t = try TopologyParser.parse(Self.file(sw: "{name: sw0, vni: 100}"), file: "m.yaml").placed(on: "n1")
        let d = try DesiredFabric(t)
        let g = d.segments[0]
        // Nothing yet: the segment is made (and opened with the ports), every entry added.
        let empty = Planner.plan(current: CurrentFabric(links: [], hosts: [:]), desired: d)
        let steps = empty.operations.map(\.description)
        #expect(steps.contains("create segment \(g.device) of tenant acme on mn-sw0 (VNI 100, from 192.0.2.1)"))
        #expect(steps.filter { $0.hasPrefix("add forwarding entry") }.count == g.entries.count)
        #expect(empty.phases.map(\.kind).firstIndex(of: .segments)! == empty.phases.map(\.kind).firstIndex(of: .switches)! + 1)
        // The segment there as it should be, all entries but one, plus a stale one: exactly two steps.
        var vx = Link(name: g.device.rawValue, index: 7, group: d.group, kind: "vxlan")
        vx.data = .vxlan(g.vxlan)
        vx.alias = g.tag
        vx.mtu = g.mtu
        vx.masterIndex = 6
        vx.flags = UInt32(IFF_UP)
        vx.bridgePort = BridgePortFlags(learning: false, neighSuppress: true)
        var br = Link(name: "mn-sw0", index: 6, group: d.group, kind: "bridge")
        br.alias = d.bridges[0].tag
        br.mac = d.bridges[0].mac
        var current = CurrentFabric(links: [br, vx], hosts: [:])
        var have = Set(g.entries.dropLast())
        let stale = DesiredFabric.ForwardingEntry(device: g.device, mac: MACAddress(2, 0, 0, 0, 0, 9), kind: .tunnel(remote: try IPAddress("192.0.2.9")))
        have.insert(stale)
        current.forwarding = have
        let diff = Planner.plan(current: current, desired: d).operations.filter {
            if case .addForwarding = $0 { return true }
            if case .removeForwarding = $0 { return true }
            return false
        }
        #expect(diff == [.removeForwarding(stale), .addForwarding(g.entries.last!)], "\(diff)")
        let segmentSteps = Planner.plan(current: current, desired: d).operations.filter { $0.phase == .segments }
        #expect(segmentSteps.count == 2, "the segment itself is left alone: \(segmentSteps)")
        // Learning back on (someone changed it): the segment is put back.
        current.links[1].bridgePort?.learning = true
        #expect(Planner.plan(current: current, desired: d).operations.contains(.changeSegment(g)))
    }

    @Test func kernelEntriesReadBackAsTheEntriesQuiverWrites() throws {
        let dev = try InterfaceName(validating: "mn.v1")
        let mac = MACAddress(2, 1, 2, 3, 4, 5)
        let a = try IPAddress("192.0.2.7")
        #expect(DesiredFabric.ForwardingEntry(.tunnel(mac, remote: a, ifindex: 4), device: dev)?.kind == .tunnel(remote: a))
        // A bridge entry as the kernel dumps it: no NTF_MASTER flag, NDA_MASTER set, state NOARP.
        var dumped = Neighbour(family: AF_BRIDGE, ifindex: 4, state: UInt16(NUD_NOARP), flags: 0, mac: mac, destination: nil)
        dumped.master = 3
        #expect(DesiredFabric.ForwardingEntry(dumped, device: dev)?.kind == .bridgeStatic)
        // The port's own (local, permanent) entry and a learned one are not Quiver's.
        var local = dumped
        local.state = UInt16(NUD_PERMANENT)
        #expect(DesiredFabric.ForwardingEntry(local, device: dev) == nil)
        var learned = dumped
        learned.state = UInt16(NUD_REACHABLE)
        #expect(DesiredFabric.ForwardingEntry(learned, device: dev) == nil)
        #expect(DesiredFabric.ForwardingEntry(.address(try IPAddress("10.0.0.1"), mac: mac, ifindex: 3), device: dev)?.kind == .neighbour(try IPAddress("10.0.0.1")))
    }
}
