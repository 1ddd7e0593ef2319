import Foundation
import QuiverValues

/// How names in a file become kernel names, deterministically:
///
/// | object | kernel name | where |
/// |---|---|---|
/// | switch `S` | bridge `T-S` | fabric namespace |
/// | VNIC `V` of host `H` | `T-H-V` (host side) and `V` (endpoint side) | fabric / the host's namespace |
/// | tenant `N` caps | IFBs `T-N-f` (from endpoints), `T-N-t` (to endpoints) | fabric namespace |
/// | host `H` of tenant `N` | network namespace `T-N-H` | `/var/run/netns` |
/// | VNIC `V` of VM host `H` | tap `T-H-V` (guest: `ethN`) | fabric namespace |
/// | isolation and protection | nftables table `bridge quiver-T` | fabric namespace |
/// | tenant `N`'s segment on a switch `S` that spans nodes | VXLAN `T.vXXXX` | fabric namespace |
/// | the underlay allow-list | nftables table `inet quiver-T` | fabric namespace |
///
/// Names in the file may use letters, digits and `_` (no `-`, so joined names cannot collide);
/// every derived interface name must fit 15 bytes, or validation says which one and by how much.
/// Every link Quiver makes in the fabric carries the topology's link group (set atomically at
/// creation) and an `ifalias` tag `quiver:T/...`; each namespace's `lo` carries
/// `quiver:T/host/N/H`. On a node of a multi-node file the tags say which node made them
/// (`quiver:T@n1/...`), so nodes that share a kernel (the tests' simulation) never take each
/// other's objects for their own.
public struct KernelNames: Sendable {
    public let topology: String
    /// The node this host builds (multi-node files only).
    public let node: String?

    public init(_ topology: String, node: String? = nil) {
        self.topology = topology
        self.node = node
    }

    /// The names of a (placed) topology.
    public init(_ t: Topology) { self.init(t.name, node: t.node) }

    /// What the tags and state records are keyed by: `T`, or `T@node`.
    public var scope: String { topology + (node.map { "@" + $0 } ?? "") }

    /// Tenant `N`'s VXLAN device on switch `S`: `T.v` and four hex digits of a hash of both (the
    /// validator reports the rare collision, as for every kernel name).
    public func segmentDevice(tenant: String, switch s: String) -> String {
        topology + ".v" + String(format: "%04x", StableHash.fnv1a32("\(tenant)/\(s)") & 0xFFFF)
    }
    public func segmentTag(tenant: String, switch s: String) -> String { "\(tagPrefix)segment/\(s)/\(tenant)" }

    public func bridge(_ sw: String) -> String { "\(topology)-\(sw)" }
    public func hostDevice(host: String, vnic: String) -> String { "\(topology)-\(host)-\(vnic)" }
    public func ifbFrom(tenant: String) -> String { "\(topology)-\(tenant)-f" }
    public func ifbTo(tenant: String) -> String { "\(topology)-\(tenant)-t" }
    public func namespace(tenant: String, host: String) -> String { "\(topology)-\(tenant)-\(host)" }
    /// The topology's nftables table (family bridge); its comment starts with ``tagPrefix``.
    public var firewallTable: String { "quiver-\(topology)" }

    /// The prefix of every tag of this topology.
    public var tagPrefix: String { "quiver:\(scope)/" }
    public func switchTag(_ sw: String) -> String { "\(tagPrefix)switch/\(sw)" }
    public func vnicTag(tenant: String, host: String, vnic: String) -> String { "\(tagPrefix)vnic/\(tenant)/\(host)/\(vnic)" }
    public func tenantTag(_ tenant: String) -> String { "\(tagPrefix)tenant/\(tenant)" }
    public func hostTag(tenant: String, host: String) -> String { "\(tagPrefix)host/\(tenant)/\(host)" }

    /// The topology a tag names (`quiver:lab/vnic/...` → `lab`), if it is a topology's tag.
    public static func topology(ofTag tag: String) -> String? {
        guard tag.hasPrefix("quiver:"), let slash = tag.firstIndex(of: "/") else { return nil }
        var name = String(tag[tag.index(tag.startIndex, offsetBy: 7)..<slash])
        if let at = name.firstIndex(of: "@") { name = String(name[..<at]) }
        return (try? TopologyName(validating: name)) != nil ? name : nil
    }

    /// The topology's link group: FNV-1a of its name, in 0x5100_0000…0x51FF_FFFF (never 0, the
    /// default group of every link).
    public var group: UInt32 { 0x5100_0000 | (StableHash.fnv1a32(topology) & 0x00FF_FFFF) }

    /// The MAC of a bridge on this node (switches that span nodes have one of their own).
    public func switchMAC(_ bridge: String) -> MACAddress {
        let h = StableHash.fnv1a64("\(scope)/switch/\(bridge)")
        func byte(_ i: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: h >> (8 * i)) }
        return MACAddress(0x02, byte(0), byte(1), byte(2), byte(3), byte(4))
    }

    /// A stable, locally administered unicast MAC for `mac: auto`.
    public func autoMAC(tenant: String, host: String, vnic: String) -> MACAddress {
        let h = StableHash.fnv1a64("\(topology)/\(tenant)/\(host)/\(vnic)")
        func byte(_ i: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: h >> (8 * i)) }
        return MACAddress(0x02, byte(0), byte(1), byte(2), byte(3), byte(4))
    }
}
