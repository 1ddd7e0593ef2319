import QuiverKernel
import QuiverProtection
import QuiverTopology

extension DesiredFabric {
    /// One tenant's VXLAN segment on a switch that spans nodes: its device (a port of the
    /// switch's bridge) and the forwarding entries that make flooding and learning unnecessary.
    public struct Segment: Sendable, Equatable {
        public var device: InterfaceName
        public var tag: String
        public var bridge: InterfaceName
        public var tenant: String
        public var vni: UInt32
        /// This node's underlay address.
        public var local: IPAddress
        public var mtu: UInt32
        /// Every entry the VXLAN device and the bridge hold for the segment.
        public var entries: [ForwardingEntry]
        /// The remote endpoints' addresses (answered by the bridge; only the tenant may ask).
        public var suppressed: [IPAddress]

        /// The device as the kernel is asked to make it: static forwarding only.
        public var vxlan: Vxlan { Vxlan(vni: vni, local: local, port: UnderlayGuard.port, learning: false) }
    }

    /// A forwarding entry of a segment, by device name (indexes are looked up when it is sent).
    public struct ForwardingEntry: Sendable, Equatable, Hashable, CustomStringConvertible {
        public enum Kind: Sendable, Equatable, Hashable {
            /// The VXLAN device's own table: `mac` (all zeros: broadcast and multicast) → `remote`.
            case tunnel(remote: IPAddress)
            /// A static entry of the bridge: `mac` is behind the VXLAN port.
            case bridgeStatic
            /// A permanent ARP/ND entry on the bridge device: `address` is at `mac`.
            case neighbour(IPAddress)
        }
        /// The VXLAN device (tunnel, bridge entries) or the bridge (neighbour entries).
        public var device: InterfaceName
        public var mac: MACAddress
        public var kind: Kind

        public func neighbour(ifindex: Int32) -> Neighbour {
            switch kind {
            case .tunnel(let remote): return .tunnel(mac, remote: remote, ifindex: ifindex)
            case .bridgeStatic: return .bridgeStatic(mac, port: ifindex)
            case .neighbour(let a): return .address(a, mac: mac, ifindex: ifindex)
            }
        }

        /// The entry a kernel entry on `device` is, if it is one Quiver writes.
        public init?(_ n: Neighbour, device: InterfaceName) {
            guard let mac = n.mac else { return nil }
            if n.isTunnel, let remote = n.destination { kind = .tunnel(remote: remote) }
            else if n.isBridgeStatic { kind = .bridgeStatic }
            else if n.isPermanentAddress, let a = n.destination { kind = .neighbour(a) }
            else { return nil }
            self.device = device
            self.mac = mac
        }

        public init(device: InterfaceName, mac: MACAddress, kind: Kind) {
            self.device = device
            self.mac = mac
            self.kind = kind
        }

        public var description: String {
            switch kind {
            case .tunnel(let r): return "\(device): \(mac) → \(r)"
            case .bridgeStatic: return "\(device): \(mac) (bridge)"
            case .neighbour(let a): return "\(device): \(a) is at \(mac)"
            }
        }
    }

    /// The segments of a placed topology. `underlayMTU`: the MTU of the link holding this node's
    /// underlay address.
    static func segments(_ t: Topology, underlayMTU: UInt32) throws(InvalidValue) -> [Segment] {
        let n = KernelNames(t)
        return try t.segments.map { s throws(InvalidValue) in
            let device = try InterfaceName(validating: n.segmentDevice(tenant: s.tenant, switch: s.switchName))
            let bridge = try InterfaceName(validating: n.bridge(s.switchName))
            var entries = s.peers.map { ForwardingEntry(device: device, mac: MACAddress(0, 0, 0, 0, 0, 0), kind: .tunnel(remote: $0)) }
            for r in s.remotes {
                entries.append(ForwardingEntry(device: device, mac: r.mac, kind: .tunnel(remote: r.underlay)))
                entries.append(ForwardingEntry(device: device, mac: r.mac, kind: .bridgeStatic))
                for p in r.ips { entries.append(ForwardingEntry(device: bridge, mac: r.mac, kind: .neighbour(p.address))) }
            }
            let mtu = t.switches.first { $0.name == s.switchName }?.mtu ?? (underlayMTU - Topology.vxlanOverhead(s.local))
            return Segment(device: device, tag: n.segmentTag(tenant: s.tenant, switch: s.switchName), bridge: bridge, tenant: s.tenant,
                           vni: s.vni, local: s.local, mtu: mtu, entries: entries, suppressed: s.remotes.flatMap { $0.ips.map(\.address) })
        }
    }

    /// The segments' part of the rules: each VXLAN port a member port of its tenant (no
    /// protection: what arrives was checked on its own node), the suppressed addresses, and the
    /// node's underlay allow-list.
    func withSegments(_ r: Ruleset, nodes: [IPAddress]) -> Ruleset {
        guard !segments.isEmpty else { return r }
        var r = r
        for s in segments {
            r.ports.append(ProtectedPort(device: s.device.rawValue, tenant: s.tenant, mac: MACAddress(0, 0, 0, 0, 0, 0), protection: [], allowed: []))
        }
        r.suppressed = segments.flatMap { s in s.suppressed.map { SuppressedAddress(address: $0, tenant: s.tenant) } }
        r.underlay = UnderlayGuard(vnis: segments.map(\.vni), sources: nodes)
        return r
    }
}
