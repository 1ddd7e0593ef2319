import QuiverValues

/// The checks of a multi-node file: `nodes:`, every host's `node:`, the switches' VNIs, and what
/// a switch that spans nodes cannot have.
extension TopologyValidator.Check {
    mutating func nodes() {
        guard !t.nodes.isEmpty else {
            for (_, h) in t.placedHosts where h.node != nil {
                fail(h.nodeLocation ?? h.location, "host \(h.name) has `node:` but the file has no `nodes:`",
                     "declare the nodes (`nodes: [{name: n1, underlay: 192.0.2.1}]`) or remove `node:`")
            }
            for s in t.switches where s.vni != nil {
                fail(s.vniLocation ?? s.location, "switch \(s.name) has `vni:` but the file has no `nodes:`", "a VNI names a segment between nodes; remove it")
            }
            return
        }
        if t.nodes.count > Limits.nodes { fail(top, "the topology has \(t.nodes.count) nodes; at most \(Limits.nodes)") }
        duplicates(t.nodes, \.name, \.location, "node")
        var underlays: [IPAddress: SourceLocation] = [:]
        for n in t.nodes {
            checkName(n.name, "node", n.location)
            let a = n.underlay
            if a.isUnspecified || a.isMulticast || a.isLoopback || (a.isV4 && a.bytes == [255, 255, 255, 255]) {
                fail(n.location, "node \(n.name): underlay \(a) is not a unicast address", "give the address of the node's underlay interface")
            }
            if let first = underlays[a] { fail(n.location, "node \(n.name): underlay \(a) is also node \(t.nodes.first { $0.underlay == a }!.name)'s at \(first)") }
            underlays[a] = n.location
        }
        if Set(t.nodes.map(\.underlay.isV4)).count > 1 {
            fail(t.nodes[0].location, "the nodes' underlay addresses mix IPv4 and IPv6", "VXLAN tunnels join one family: give every node an address of the same family")
        }
        let known = Set(t.nodes.map(\.name))
        for (_, h) in t.placedHosts {
            guard let n = h.node else {
                fail(h.location, "host \(h.name) has no `node:`; a file with `nodes:` places every host",
                     "add `node: \(t.nodes[0].name)` (one of \(t.nodes.map(\.name).joined(separator: ", ")))")
                continue
            }
            if !known.contains(n) {
                fail(h.nodeLocation ?? h.location, "host \(h.name): unknown node \(InvalidValue.quoted(n))",
                     "nodes are \(t.nodes.map(\.name).joined(separator: ", "))")
            }
        }
        for s in t.switches where s.dhcp {
            fail(s.dhcpLocation ?? s.location, "switch \(s.name): `dhcp: true` is not supported in a file with `nodes:` yet",
                 "give the hosts static addresses (`ips:`), or keep DHCP switches in a single-node topology")
        }
        segments()
    }

    /// Every segment's VNI in range and unique, its device name valid and unique, and no VNIC on
    /// a spanning switch that other nodes could not know in advance.
    mutating func segments() {
        let spanning = t.spanningSwitches
        var vnis: [UInt64: String] = [:]
        for s in t.switches {
            let at = s.vniLocation ?? s.location
            guard spanning.contains(s.name) else { continue }
            for tenant in t.tenants(on: s.name) {
                let vni = t.vni(switch: s.name, tenant: tenant)
                if vni > 16_777_215 {
                    fail(at, "switch \(s.name): tenant \(tenant)'s VNI \(vni) is above 16777215", "lower `vni:` so that every tenant's VNI fits 24 bits")
                }
                if let other = vnis[vni] {
                    fail(at, "switch \(s.name): tenant \(tenant)'s VNI \(vni) is also \(other)'s", "set `vni:` on the switches so their ranges do not overlap")
                } else {
                    vnis[vni] = "tenant " + tenant + " on switch " + s.name
                }
                kernelName(names.segmentDevice(tenant: tenant, switch: s.name), "tenant \(tenant)'s segment on switch \(s.name)", s.location)
            }
        }
        for tenant in t.tenants {
            for h in tenant.hosts {
                for v in h.vnics where spanning.contains(v.over) {
                    if case .random = v.mac {
                        fail(v.location, "VNIC \(h.name)/\(v.name) is on switch \(v.over), which spans nodes, and has `mac: random`",
                             "the other nodes must know its MAC in advance: use `mac: auto` or a fixed MAC")
                    }
                    if h.vm != nil && v.mode == "macvtap" {
                        fail(v.location, "VNIC \(h.name)/\(v.name) is a macvtap on switch \(v.over), which spans nodes", "use `mode: tap` on a switch that spans nodes")
                    }
                }
            }
        }
    }
}
