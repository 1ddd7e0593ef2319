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
///
/// Names in the file may use letters, digits and `_` (no `-`, so joined names cannot collide);
/// every derived interface name must fit 15 bytes, or validation says which one and by how much.
/// Every link Quiver makes in the fabric carries the topology's link group (set atomically at
/// creation) and an `ifalias` tag `quiver:T/...`; each namespace's `lo` carries
/// `quiver:T/host/N/H`.
public struct KernelNames: Sendable {
    public let topology: String

    public init(_ topology: String) { self.topology = topology }

    public func bridge(_ sw: String) -> String { "\(topology)-\(sw)" }
    public func hostDevice(host: String, vnic: String) -> String { "\(topology)-\(host)-\(vnic)" }
    public func ifbFrom(tenant: String) -> String { "\(topology)-\(tenant)-f" }
    public func ifbTo(tenant: String) -> String { "\(topology)-\(tenant)-t" }
    public func namespace(tenant: String, host: String) -> String { "\(topology)-\(tenant)-\(host)" }
    /// The topology's nftables table (family bridge); its comment starts with ``tagPrefix``.
    public var firewallTable: String { "quiver-\(topology)" }

    /// The prefix of every tag of this topology.
    public var tagPrefix: String { "quiver:\(topology)/" }
    public func switchTag(_ sw: String) -> String { "\(tagPrefix)switch/\(sw)" }
    public func vnicTag(tenant: String, host: String, vnic: String) -> String { "\(tagPrefix)vnic/\(tenant)/\(host)/\(vnic)" }
    public func tenantTag(_ tenant: String) -> String { "\(tagPrefix)tenant/\(tenant)" }
    public func hostTag(tenant: String, host: String) -> String { "\(tagPrefix)host/\(tenant)/\(host)" }

    /// The topology a tag names (`quiver:lab/vnic/...` → `lab`), if it is a topology's tag.
    public static func topology(ofTag tag: String) -> String? {
        guard tag.hasPrefix("quiver:"), let slash = tag.firstIndex(of: "/") else { return nil }
        let name = String(tag[tag.index(tag.startIndex, offsetBy: 7)..<slash])
        return (try? TopologyName(validating: name)) != nil ? name : nil
    }

    /// The topology's link group: FNV-1a of its name, in 0x5100_0000…0x51FF_FFFF (never 0, the
    /// default group of every link).
    public var group: UInt32 { 0x5100_0000 | (StableHash.fnv1a32(topology) & 0x00FF_FFFF) }

    /// A stable, locally administered unicast MAC for `mac: auto`.
    public func autoMAC(tenant: String, host: String, vnic: String) -> MACAddress {
        let h = StableHash.fnv1a64("\(topology)/\(tenant)/\(host)/\(vnic)")
        func byte(_ i: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: h >> (8 * i)) }
        return MACAddress(0x02, byte(0), byte(1), byte(2), byte(3), byte(4))
    }
}
