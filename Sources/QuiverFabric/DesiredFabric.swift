import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology
import QuiverVM

/// What a topology should look like in the kernel, derived from the file (pure). Every kernel
/// name in it is validated once, here.
public struct DesiredFabric: Sendable, Equatable {
    public struct Bridge: Sendable, Equatable {
        public var name: InterfaceName
        public var tag: String
        public var mtu: UInt32?
        /// A switch that spans nodes has a MAC of its own: a bridge that takes its ports' lowest
        /// changes it as ports come and go, and the kernel then flushes its neighbour table —
        /// the entries that answer ARP and ND for remote endpoints.
        public var mac: MACAddress? = nil
    }

    public struct VNIC: Sendable, Equatable {
        public var tenant: String
        public var host: String
        /// The endpoint: in its namespace, or the guest's `ethN`.
        public var name: InterfaceName
        /// Host-side device (in the fabric) and the switch it is plugged in (a macvtap's lower
        /// link: a switch's bridge or a host link).
        public var hostDevice: InterfaceName
        public var bridge: InterfaceName
        /// The host's network namespace; empty for a VM host's NIC.
        public var namespace: String
        /// nil: `mac: random` (kept from the kernel once made).
        public var mac: MACAddress?
        public var mtu: UInt32?
        public var ips: [IPPrefix]
        public var gateway: IPAddress?
        public var tag: String
        public var protection: Set<ProtectionKind> = []
        /// Sources `ip-nospoof` allows: `allowed-ips`, or each of `ips` as a host prefix.
        public var allowed: [IPPrefix] = []
        /// A VM host's NIC: `hostDevice` is a tap fed to qemu, `name` is the guest's `ethN`,
        /// `namespace` is empty.
        public var isVM = false
        /// A VM NIC in `mode: macvtap`: `hostDevice` is a macvtap over `bridge`, the guest's own
        /// end (its transmit is what the guest sends).
        public var isMacvtap = false
        /// Netns hosts: whether the endpoint has an IPv6 link-local address.
        public var linkLocal = false

        /// The endpoint's own view of `hostDevice`'s counters: a fabric port's transmit is what
        /// the endpoint receives; a macvtap is the guest's own end, so there it is the other way
        /// round.
        public func endpointCounters(_ s: LinkStatistics) -> (receivedPackets: UInt64, receivedBytes: UInt64,
                                                              sentPackets: UInt64, sentBytes: UInt64) {
            isMacvtap ? (s.rxPackets, s.rxBytes, s.txPackets, s.txBytes) : (s.txPackets, s.txBytes, s.rxPackets, s.rxBytes)
        }
    }

    /// A `kind: vm` host: what to start and where its run directory is.
    public struct VM: Sendable, Equatable {
        public var tenant: String
        public var host: String
        public var directory: String
        public var spec: VMSpec
        /// Where each NIC's device goes, same order as `spec.nics`.
        public var taps: [NICDevice]
        /// False: a guest found stopped (its qemu gone, its record there) stays stopped — the
        /// daemon's reconcile of a guest whose `restart:` says not to bring it back.
        public var startIfStopped = true
    }

    /// A VM NIC's device in the fabric.
    public struct NICDevice: Sendable, Equatable {
        /// The tap or macvtap.
        public var name: InterfaceName
        /// A tap's switch, or a macvtap's lower link: a switch's bridge or a host link.
        public var bridge: InterfaceName
        /// ifalias: the owner tag.
        public var tag: String
        public var macvtap: Bool
        /// The lower link is a switch of the topology (not a host link Quiver does not own).
        public var overSwitch: Bool
    }

    public struct Namespace: Sendable, Equatable {
        public var name: NamespaceName
        public var tag: String
    }

    public var topology: String
    public var group: UInt32
    public var bridges: [Bridge]
    public var namespaces: [Namespace]
    public var vnics: [VNIC]
    /// One per tenant that has any cap.
    public var capGroups: [CapGroup]
    public var vms: [VM]
    /// DHCP servers of `dhcp: true` switches (their namespaces and VNICs are among the above).
    public var dhcpServers: [DHCPServer] = []
    /// A node's VXLAN segments (a placed multi-node topology).
    public var segments: [Segment] = []
    /// Every node's underlay address: the sources the underlay guard accepts.
    public var nodeUnderlays: [IPAddress] = []
    /// The node this is (a placed multi-node topology).
    public var node: String?
    /// The tag prefix of what this topology (on this node) owns.
    public var tagPrefix: String
    /// The topology's kernel names and tags, on this node.
    public var names: KernelNames { KernelNames(topology, node: node) }

    /// The fabric links the topology keeps, apart from guests' NICs (made with their guest):
    /// switches, VNIC ports and the tenants' IFBs.
    public var fabricLinkNames: [InterfaceName] {
        bridges.map(\.name) + vnics.filter { !$0.isVM }.map(\.hostDevice) + capGroups.flatMap { [$0.ifbFrom, $0.ifbTo] } + segments.map(\.device)
    }

    /// Throws when a name the file makes is not a valid kernel name: a topology the validator
    /// passed never does.
    /// `underlayMTU`: on a node of a multi-node file, the MTU of the link that holds the node's
    /// underlay address (the endpoints of a switch that spans nodes get it less the VXLAN
    /// overhead, unless the file sets `mtu`).
    public init(_ t: Topology, underlayMTU: UInt32 = 1500) throws(InvalidValue) {
        let n = KernelNames(t)
        topology = t.name
        group = n.group
        tagPrefix = n.tagPrefix
        node = t.node
        let spanning = Set(t.segments.map(\.switchName))
        let overhead = t.segments.first.map { Topology.vxlanOverhead($0.local) } ?? 0
        bridges = try t.switches.map { s throws(InvalidValue) in
            Bridge(name: try InterfaceName(validating: n.bridge(s.name)), tag: n.switchTag(s.name), mtu: s.mtu)
        }
        // A VNIC's lower link: its switch's bridge, or — a macvtap whose `over:` names no switch —
        // a host link of that name.
        func lower(_ v: Topology.VNIC) throws(InvalidValue) -> (name: InterfaceName, isSwitch: Bool) {
            t.switches.contains { $0.name == v.over } ? (try InterfaceName(validating: n.bridge(v.over)), true) : (try InterfaceName(validating: v.over), false)
        }
        var namespaces: [Namespace] = []
        var vnics: [VNIC] = []
        var groups: [CapGroup] = []
        var vms: [VM] = []
        for tenant in t.tenants {
            var members: [CapMember] = []
            for host in tenant.hosts {
                let ns = host.vm == nil ? n.namespace(tenant: tenant.name, host: host.name) : ""
                if let m = host.vm {
                    vms.append(try Self.vm(m, host: host, tenant: tenant.name, in: t))
                } else {
                    namespaces.append(Namespace(name: try NamespaceName(validating: ns), tag: n.hostTag(tenant: tenant.name, host: host.name)))
                }
                for (vi, v) in host.vnics.enumerated() {
                    let mac: MACAddress?
                    switch v.mac {
                    case .auto: mac = n.autoMAC(tenant: tenant.name, host: host.name, vnic: v.name)
                    case .random: mac = nil
                    case .fixed(let m): mac = m
                    }
                    let dev = try InterfaceName(validating: n.hostDevice(host: host.name, vnic: v.name))
                    let macvtap = host.vm != nil && v.mode == "macvtap"
                    vnics.append(VNIC(tenant: tenant.name, host: host.name, name: try InterfaceName(validating: host.vm == nil || host.vm!.cloudInit ? v.name : "eth\(vi)"),
                                      hostDevice: dev, bridge: try lower(v).name,
                                      namespace: ns, mac: mac,
                                      mtu: v.mtu ?? t.switches.first { $0.name == v.over }?.mtu ?? (spanning.contains(v.over) ? underlayMTU - overhead : nil),
                                      ips: v.ips, gateway: v.gateway, tag: n.vnicTag(tenant: tenant.name, host: host.name, vnic: v.name),
                                      protection: Set(v.protection.compactMap { ProtectionKind(rawValue: $0.rawValue) }),
                                      allowed: v.allowedIPs.isEmpty ? v.ips.map(\.address.hostPrefix) : v.allowedIPs,
                                      isVM: host.vm != nil, isMacvtap: macvtap, linkLocal: host.vm == nil && v.wantsLinkLocal))
                    if v.maxbw != nil || v.floor != nil || !v.flows.isEmpty || tenant.maxbw != nil {
                        // The MAC tells members apart on the tenant's IFBs; a random MAC is
                        // filled in from the kernel before the caps are applied.
                        members.append(CapMember(name: "\(host.name)/\(v.name)", device: dev, mac: mac,
                                                 maxbw: v.maxbw, floor: v.floor, flows: v.flows, burst: v.burst, queueLimit: v.queue,
                                                 facesEndpoint: macvtap, guestSender: host.vm != nil))
                    }
                }
            }
            if !members.isEmpty {
                groups.append(CapGroup(name: tenant.name, ifbFrom: try InterfaceName(validating: n.ifbFrom(tenant: tenant.name)),
                                       ifbTo: try InterfaceName(validating: n.ifbTo(tenant: tenant.name)), maxbw: tenant.maxbw,
                                       members: members, ownerTag: n.tenantTag(tenant.name), linkGroup: n.group))
            }
        }
        let dhcp = try Self.dhcp(t)
        self.namespaces = namespaces + dhcp.namespaces
        self.vnics = vnics + dhcp.vnics
        dhcpServers = dhcp.servers
        capGroups = groups
        self.vms = vms
        segments = try Self.segments(t, underlayMTU: underlayMTU)
        for i in bridges.indices where segments.contains(where: { $0.bridge == bridges[i].name }) {
            bridges[i].mac = n.switchMAC(bridges[i].name.rawValue)
        }
        nodeUnderlays = t.nodes.map(\.underlay)
    }

    /// The isolation and protection rules, once every VNIC's MAC is known (`macs` fills in the
    /// `mac: random` ones by host device); nil while one is still unknown, or with no VNICs.
    public func ruleset(macs: [InterfaceName: MACAddress] = [:]) -> Ruleset? {
        guard !vnics.isEmpty else { return nil }
        var ports: [ProtectedPort] = []
        for v in vnics {
            guard let mac = v.mac ?? macs[v.hostDevice] else { return nil }
            // A guest configures its own IPv6 (a link-local address at least); a namespace host
            // speaks it when the file gives it an IPv6 address or a link-local one.
            ports.append(ProtectedPort(device: v.hostDevice.rawValue, tenant: v.tenant, mac: mac, protection: v.protection, allowed: v.allowed,
                                       attachment: v.isMacvtap ? .macvtap : .bridgePort,
                                       ipv6: v.isVM || v.linkLocal || v.allowed.contains { !$0.address.isV4 }))
        }
        return withSegments(Ruleset(table: KernelNames(topology).firewallTable, ownerTag: tagPrefix, ports: ports), nodes: nodeUnderlays)
    }
}
