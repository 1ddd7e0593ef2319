import QuiverKernel
import QuiverNetlink

/// An address the bridge answers ARP and neighbour solicitations for — a remote endpoint of a
/// VXLAN segment, whose entry is in the bridge's neighbour table — and the tenant it belongs to.
public struct SuppressedAddress: Sendable, Equatable, Hashable {
    public var address: IPAddress
    public var tenant: String
    public init(address: IPAddress, tenant: String) {
        self.address = address
        self.tenant = tenant
    }
}

/// VXLAN carries no authentication, so a node accepts VXLAN packets for its topology's VNIs only
/// from the declared nodes' underlay addresses. The `inet` table of the topology's name holds:
/// - base chain `underlay` (prerouting, priority -300): `udp dport 4789` → `vxlan`;
/// - chain `vxlan`: each node's address → accept; then each of the topology's VNIs (the 24 bits
///   the kernel reads, whatever the reserved byte after them holds) → counter `underlay/dropped`,
///   drop. VXLAN for other VNIs is not the topology's and passes.
public struct UnderlayGuard: Sendable, Equatable {
    public static let family = NFTFamily.inet
    public static let port: UInt16 = 4789
    /// The named counter of dropped VXLAN packets.
    public static let counter = "underlay/dropped"
    /// Chains and counters the table holds.
    static let use = 3
    public var vnis: [UInt32]
    public var sources: [IPAddress]
    public init(vnis: [UInt32], sources: [IPAddress]) {
        self.vnis = vnis
        self.sources = sources
    }
}

extension Ruleset {
    /// The `inet` table's contents (empty without an underlay guard).
    public func underlayBody() -> [NetlinkRequest] {
        guard let u = underlay else { return [] }
        let f = UnderlayGuard.family
        var b = Builder(family: f, table: table)
        b.requests.append(NFTCounterRequest.add(f, table: table, UnderlayGuard.counter))
        b.requests.append(NFTChainRequest.addBase(f, table: table, "underlay", hook: .prerouting, priority: -300))
        b.requests.append(NFTChainRequest.add(f, table: table, "vxlan"))
        let port = UnderlayGuard.port
        b.rule("underlay", [.meta(.l4proto), .compare(equal: true, [17]),
                            .payload(.transport, offset: 2, length: 2), .compare(equal: true, [UInt8(port >> 8), UInt8(port & 0xFF)]),
                            .verdict(.jump("vxlan"))])
        for a in u.sources {
            let family: UInt8 = a.isV4 ? 2 : 10
            b.rule("vxlan", [.meta(.nfproto), .compare(equal: true, [family]),
                             .payload(.network, offset: a.isV4 ? 12 : 8, length: a.isV4 ? 4 : 16), .compare(equal: true, a.bytes),
                             .verdict(.accept)])
        }
        for vni in u.vnis {
            // The VNI is the first 3 bytes of the second word of the VXLAN header (UDP payload 4).
            b.rule("vxlan", [.payload(.transport, offset: 12, length: 4), .mask([0xFF, 0xFF, 0xFF, 0x00]),
                             .compare(equal: true, [UInt8(vni >> 16 & 0xFF), UInt8(vni >> 8 & 0xFF), UInt8(vni & 0xFF), 0])]
                   + Builder.drop(UnderlayGuard.counter))
        }
        return b.requests + b.rules
    }
}

extension Ruleset.Builder {
    /// At the top of `protect`: an ARP request or neighbour solicitation for a suppressed
    /// address from a port not of its tenant is dropped (into that tenant's isolation counter)
    /// — the bridge would otherwise answer it with the remote endpoint's MAC, across tenants.
    mutating func suppressionGuards(_ addresses: [SuppressedAddress]) {
        for a in addresses {
            let notTheTenant: [NFTExpression] = [.meta(.inputInterfaceName), .lookup(set: Ruleset.tenantPorts(a.tenant), map: false, inverted: true)]
            if a.address.isV4 {
                // ARP, Ethernet/IPv4, a request (op 1), target protocol address (offset 24).
                rule("protect", NFTMatch.etherType(0x0806)
                     + [.payload(.network, offset: 6, length: 2), .compare(equal: true, [0, 1]),
                        .payload(.network, offset: 24, length: 4), .compare(equal: true, a.address.bytes)]
                     + notTheTenant + Ruleset.Builder.drop(Ruleset.isolationCounter(a.tenant)))
            } else {
                // ICMPv6 neighbour solicitation (type 135), target address (offset 8).
                rule("protect", NFTMatch.etherType(0x86DD) + [.meta(.l4proto), .compare(equal: true, [58])] + Ruleset.icmp6Type(135)
                     + [.payload(.transport, offset: 8, length: 16), .compare(equal: true, a.address.bytes)]
                     + notTheTenant + Ruleset.Builder.drop(Ruleset.isolationCounter(a.tenant)))
            }
        }
    }
}
