import QuiverKernel
import QuiverNetlink

/// Crossbow's link-protection kinds (`dladm set-linkprop -p protection=...`).
public enum ProtectionKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// The source MAC of every frame (and the sender MAC of ARP) must be the VNIC's.
    case macNospoof = "mac-nospoof"
    /// IPv4/IPv6 source and ARP sender address must be in the allowed prefixes.
    case ipNospoof = "ip-nospoof"
    /// Only IPv4, IPv6 and ARP frames leave the VNIC.
    case restricted
    /// DHCPv4 client messages must carry the VNIC's MAC as client hardware address.
    case dhcpNospoof = "dhcp-nospoof"

    /// The counter suffix, like the kstats `macspoofed`, `ipspoofed`, `restricted`, `dhcpspoofed`.
    public var counter: String {
        switch self {
        case .macNospoof: return "mac"
        case .ipNospoof: return "ip"
        case .restricted: return "restricted"
        case .dhcpNospoof: return "dhcp"
        }
    }
}

/// How a VNIC's device meets the fabric, which decides where its rules hang.
public enum PortAttachment: String, Sendable, Hashable, Codable {
    /// A port of a switch (veth host side, tap): the bridge table's hooks see its frames.
    case bridgePort
    /// A macvtap over a lower link: its frames never cross a bridge hook, so its rules sit on
    /// the device itself (netdev egress: what the guest sends; netdev ingress: what it gets).
    case macvtap
}

/// One VNIC as the fabric sees it: the device its frames enter by, whose tenant it is and what
/// it may send.
public struct ProtectedPort: Sendable, Equatable {
    /// The bridge port (the host side of the VNIC), or the macvtap.
    public var device: String
    public var tenant: String
    public var mac: MACAddress
    public var protection: Set<ProtectionKind>
    /// Prefixes allowed as source (ip-nospoof). The IPv6 link-local address derived from the
    /// MAC and the unspecified address (duplicate address detection) are always allowed too.
    public var allowed: [IPPrefix]
    public var attachment: PortAttachment
    /// Whether the endpoint speaks IPv6 at all (an IPv6 address among `allowed`, or a link-local
    /// address). Under ip-nospoof, a VNIC that does not may send no IPv6 frame: one rule drops
    /// them all, where one that does needs the neighbour discovery checks.
    public var ipv6: Bool

    public init(device: String, tenant: String, mac: MACAddress, protection: Set<ProtectionKind>, allowed: [IPPrefix],
                attachment: PortAttachment = .bridgePort, ipv6: Bool = true) {
        self.ipv6 = ipv6
        self.attachment = attachment
        self.device = device
        self.tenant = tenant
        self.mac = mac
        self.protection = protection
        self.allowed = allowed
    }

    /// `fe80::/64` + modified EUI-64 of the MAC: the kernel's default link-local address.
    public var linkLocal: IPAddress { mac.ipv6LinkLocal.address }

    public func counterName(_ kind: ProtectionKind) -> String { Ruleset.counter(device: device, kind) }

    /// `vnic/DEV/nd` exists when something must read neighbour discovery: mac-nospoof without
    /// ip-nospoof (IPv6 passes, its link-layer options are checked), or ip-nospoof on a VNIC that
    /// speaks IPv6 (one that does not sends none).
    var hasNeighbourDiscoveryChain: Bool {
        protection.contains(.ipNospoof) ? ipv6 : protection.contains(.macNospoof)
    }

    /// Its neighbour discovery link-layer addresses are checked (in the table's shared chain).
    var checksLinkLayerOptions: Bool { hasNeighbourDiscoveryChain && protection.contains(.macNospoof) }

    /// The chains and counters its protection makes: `vnic/DEV`; `/ip4 /ip6 /arp`, and with IPv6
    /// `/ip6-unspecified /dad /na`; `/nd`; `/lladdr`; a counter per kind.
    var protectionObjects: Int {
        let ip = protection.contains(.ipNospoof)
        return protection.isEmpty ? 0 : 1 + (ip ? 3 + (ipv6 ? 3 : 0) : 0) + (hasNeighbourDiscoveryChain ? 1 : 0)
            + (checksLinkLayerOptions ? 1 : 0) + protection.count
    }
}
