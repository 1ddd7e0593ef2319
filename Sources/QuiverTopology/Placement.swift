import QuiverValues

/// Where a multi-node file puts things (pure): which switches span nodes, each tenant's VXLAN
/// segment on them and its VNI, and a topology cut down to one node's hosts with what the other
/// nodes hold on its segments.
extension Topology {
    /// A tenant's VXLAN segment on a switch that spans nodes, as one node sees it.
    public struct Segment: Sendable, Equatable {
        public var switchName: String
        public var tenant: String
        public var vni: UInt32
        /// This node's underlay address (the tunnel's source).
        public var local: IPAddress
        /// The other nodes where the tenant has VNICs on the switch: where its broadcast and
        /// multicast are replicated to, in `nodes:` order.
        public var peers: [IPAddress]
        /// The tenant's VNICs on the switch on the other nodes.
        public var remotes: [RemoteEndpoint]
    }

    /// A VNIC on another node, as far as this node's forwarding tables need it.
    public struct RemoteEndpoint: Sendable, Equatable {
        public var node: String
        public var underlay: IPAddress
        public var host: String
        public var vnic: String
        public var mac: MACAddress
        public var ips: [IPPrefix]
    }

    /// The VXLAN overhead on the underlay: outer Ethernet is not counted, outer IP + UDP + VXLAN
    /// + inner Ethernet is: 50 bytes over IPv4, 70 over IPv6.
    public static func vxlanOverhead(_ underlay: IPAddress) -> UInt32 { underlay.isV4 ? 50 : 70 }

    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }

    /// Every host with its tenant, in file order.
    var placedHosts: [(tenant: String, host: Host)] { tenants.flatMap { t in t.hosts.map { (t.name, $0) } } }

    /// Switches that have VNICs on more than one node.
    public var spanningSwitches: Set<String> {
        guard !nodes.isEmpty else { return [] }
        var nodesOf: [String: Set<String>] = [:]
        for (_, h) in placedHosts { for v in h.vnics { nodesOf[v.over, default: []].insert(h.node ?? "") } }
        return Set(nodesOf.filter { $0.value.count > 1 }.keys).intersection(switches.map(\.name))
    }

    /// Tenants with VNICs on switch `s`, in file order.
    public func tenants(on s: String) -> [String] {
        tenants.filter { t in t.hosts.contains { $0.vnics.contains { $0.over == s } } }.map(\.name)
    }

    /// The VNI of tenant `tenant`'s segment on switch `s`: the switch's `vni` plus the tenant's
    /// position among the switch's tenants, or else derived from the names (1…16777215). The
    /// validator reports values out of range and collisions.
    public func vni(switch s: String, tenant: String) -> UInt64 {
        if let base = switches.first(where: { $0.name == s })?.vni {
            return UInt64(base) + UInt64(tenants(on: s).firstIndex(of: tenant) ?? 0)
        }
        return 1 + UInt64(StableHash.fnv1a32("\(name)/\(s)/\(tenant)") % 16_777_215)
    }

    /// The MAC every node derives for a VNIC (`mac: random` has none: refused on spanning switches).
    public func fixedMAC(tenant: String, host: String, vnic: VNIC) -> MACAddress? {
        switch vnic.mac {
        case .auto: return KernelNames(name).autoMAC(tenant: tenant, host: host, vnic: vnic.name)
        case .fixed(let m): return m
        case .random: return nil
        }
    }

    /// The topology as node `name` builds it: only its hosts, and each tenant's segments on the
    /// switches that span nodes with what the other nodes hold. Expectations stay (verify picks
    /// the rows its node runs). Call on a validated topology with `nodes:`.
    public func placed(on name: String) -> Topology {
        var t = self
        t.node = name
        t.segments = []
        guard let me = node(named: name) else { return t }
        let spanning = spanningSwitches
        for s in switches where spanning.contains(s.name) {
            for tenant in tenants(on: s.name) {
                let hosts = self.tenants.first { $0.name == tenant }?.hosts ?? []
                let onSwitch = hosts.filter { $0.vnics.contains { $0.over == s.name } }
                guard onSwitch.contains(where: { $0.node == name }) else { continue }
                let peerNodes = Set(onSwitch.compactMap(\.node)).subtracting([name])
                var remotes: [RemoteEndpoint] = []
                for h in onSwitch where h.node != name {
                    guard let n = h.node.flatMap(node(named:)) else { continue }
                    for v in h.vnics where v.over == s.name {
                        guard let mac = fixedMAC(tenant: tenant, host: h.name, vnic: v) else { continue }
                        remotes.append(RemoteEndpoint(node: n.name, underlay: n.underlay, host: h.name, vnic: v.name, mac: mac, ips: v.ips))
                    }
                }
                t.segments.append(Segment(switchName: s.name, tenant: tenant, vni: UInt32(truncatingIfNeeded: vni(switch: s.name, tenant: tenant)),
                                          local: me.underlay, peers: nodes.filter { peerNodes.contains($0.name) }.map(\.underlay),
                                          remotes: remotes))
            }
        }
        t.hostsElsewhere = Set(placedHosts.filter { $0.host.node != name }.map(\.host.name))
        for i in t.tenants.indices { t.tenants[i].hosts.removeAll { $0.node != name } }
        return t
    }

    /// The node a host runs on (nil without `nodes:`).
    public func nodeOf(host: String) -> String? {
        tenants.lazy.flatMap(\.hosts).first { $0.name == host }?.node
    }

    /// On a placed topology: every MTU the file sets on a switch that spans nodes, or on a VNIC
    /// over one, that does not fit in the underlay less the VXLAN overhead (`fits`).
    public func mtuProblems(fits: UInt32, underlayMTU: UInt32) -> [TopologyError] {
        let spanning = Set(segments.map(\.switchName))
        var out: [TopologyError] = []
        func check(_ mtu: UInt32?, _ what: String, _ at: SourceLocation) {
            if let mtu, mtu > fits {
                out.append(TopologyError(at, "\(what) has mtu \(mtu), but a frame on a switch that spans nodes fits \(fits) bytes (underlay MTU \(underlayMTU) less the VXLAN overhead)",
                                         hint: "lower `mtu` to \(fits) or less, or raise the underlay interface's MTU"))
            }
        }
        for s in switches where spanning.contains(s.name) { check(s.mtu, "switch \(s.name)", s.location) }
        for t in tenants { for h in t.hosts { for v in h.vnics where spanning.contains(v.over) { check(v.mtu, "VNIC \(h.name)/\(v.name)", v.location) } } }
        return out
    }
}
