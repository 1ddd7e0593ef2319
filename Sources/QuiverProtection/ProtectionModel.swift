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

/// One VNIC as the switch sees it: the bridge port its frames enter by, whose tenant it is and
/// what it may send.
public struct ProtectedPort: Sendable, Equatable {
    /// The bridge port (the host side of the VNIC).
    public var device: String
    public var tenant: String
    public var mac: MACAddress
    public var protection: Set<ProtectionKind>
    /// Prefixes allowed as source (ip-nospoof). The IPv6 link-local address derived from the
    /// MAC and the unspecified address (duplicate address detection) are always allowed too.
    public var allowed: [IPPrefix]

    public init(device: String, tenant: String, mac: MACAddress, protection: Set<ProtectionKind>, allowed: [IPPrefix]) {
        self.device = device
        self.tenant = tenant
        self.mac = mac
        self.protection = protection
        self.allowed = allowed
    }

    /// `fe80::/64` + modified EUI-64 of the MAC: the kernel's default link-local address.
    public var linkLocal: IPAddress {
        let m = mac.bytes
        let b: [UInt8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
        return try! IPAddress(bytes: b)
    }

    public func counterName(_ kind: ProtectionKind) -> String { Ruleset.counter(device: device, kind) }
}

/// The whole nftables ruleset of one topology: one `bridge` table holding
/// - base chain `protect` (prerouting): `iifname vmap @vnics` → each VNIC's own chain;
/// - base chain `isolate` (forward, once per output port, so floods too): `oifname vmap @tenants`
///   → the output port's tenant chain, which drops frames whose input port is not that tenant's;
/// - per VNIC chains `vnic/DEV` (+ `/ip4`, `/ip6`, `/arp`) that drop spoofed frames into named
///   counters `DEV/mac`, `DEV/ip`, `DEV/restricted`, `DEV/dhcp`; per tenant `tenant/N/isolation`.
///
/// Pure: it only builds requests. Installing them is ``Firewall``'s job, as one transaction.
public struct Ruleset: Sendable, Equatable {
    public static let family = NFTFamily.bridge
    public var table: String
    /// Written into the table's comment, with the fingerprint: `quiver:lab/ 1a2b...`.
    public var ownerTag: String
    public var ports: [ProtectedPort]

    public init(table: String, ownerTag: String, ports: [ProtectedPort]) {
        self.table = table
        self.ownerTag = ownerTag
        self.ports = ports
    }

    public var tenants: [String] {
        var seen = Set<String>()
        return ports.map(\.tenant).filter { seen.insert($0).inserted }
    }

    public static func vnicChain(_ device: String) -> String { "vnic/\(device)" }
    public static func tenantChain(_ tenant: String) -> String { "tenant/\(tenant)" }
    public static func tenantPorts(_ tenant: String) -> String { "ports/\(tenant)" }
    public static func isolationCounter(_ tenant: String) -> String { "tenant/\(tenant)/isolation" }
    /// The named counter of a VNIC's drops of one kind: `DEV/mac`, `DEV/ip`, …
    public static func counter(device: String, _ kind: ProtectionKind) -> String { "\(device)/\(kind.counter)" }

    /// Everything in the table (without the table itself), in an order the kernel accepts within
    /// one transaction: counters, chains and sets before the rules and elements that name them.
    public func body() -> [NetlinkRequest] {
        let f = Self.family
        var r: [NetlinkRequest] = []
        var rules: [NetlinkRequest] = []
        func rule(_ chain: String, _ e: [NFTExpression]) { rules.append(NFTRuleRequest.add(f, table: table, chain: chain, e)) }
        func drop(_ counter: String) -> [NFTExpression] { [.counter(named: counter), .verdict(.drop)] }

        r.append(NFTChainRequest.addBase(f, table: table, "protect", hook: .prerouting, priority: -200))
        r.append(NFTChainRequest.addBase(f, table: table, "isolate", hook: .forward, priority: -200))
        r.append(NFTSetRequest.addInterfaceSet(f, table: table, "vnics", id: 1, verdictMap: true,
                                               size: ports.filter { !$0.protection.isEmpty }.count))
        r.append(NFTSetRequest.addInterfaceSet(f, table: table, "tenants", id: 2, verdictMap: true, size: ports.count))
        rule("protect", [.meta(.inputInterfaceName), .lookup(set: "vnics", map: true, inverted: false)])
        rule("isolate", [.meta(.outputInterfaceName), .lookup(set: "tenants", map: true, inverted: false)])

        for (i, t) in tenants.enumerated() {
            let chain = Self.tenantChain(t), set = Self.tenantPorts(t), counter = Self.isolationCounter(t)
            r.append(NFTCounterRequest.add(f, table: table, counter))
            r.append(NFTChainRequest.add(f, table: table, chain))
            r.append(NFTSetRequest.addInterfaceSet(f, table: table, set, id: UInt32(16 + i), verdictMap: false,
                                                   size: ports.filter { $0.tenant == t }.count))
            rule(chain, [.meta(.inputInterfaceName), .lookup(set: set, map: false, inverted: true)] + drop(counter))
        }

        var vnicElements: [(key: String, verdict: NFTVerdict?)] = []
        for p in ports where !p.protection.isEmpty {
            let chain = Self.vnicChain(p.device)
            r.append(NFTChainRequest.add(f, table: table, chain))
            for k in ProtectionKind.allCases where p.protection.contains(k) {
                r.append(NFTCounterRequest.add(f, table: table, p.counterName(k)))
            }
            vnicElements.append((p.device, .goto(chain)))
            let mac = p.mac.bytes
            let ip = ProtectionKind.ipNospoof, macKind = ProtectionKind.macNospoof
            // ARP sender hardware address (Ethernet/IPv4 ARP: after 8 bytes of header).
            let arpSenderMAC: [NFTExpression] = [.payload(.network, offset: 8, length: 6), .compare(equal: false, mac)] + drop(p.counterName(macKind))
            if p.protection.contains(macKind) {
                rule(chain, [NFTMatch.etherSource(), .compare(equal: false, mac)] + drop(p.counterName(macKind)))
                // With ip-nospoof the ARP chain checks it; IP frames then meet one rule fewer.
                if !p.protection.contains(ip) { rule(chain, NFTMatch.etherType(0x0806) + arpSenderMAC) }
            }
            if p.protection.contains(.dhcpNospoof) {
                // UDP 68 → 67 whose BOOTP chaddr (UDP payload offset 28) is not the VNIC's MAC.
                rule(chain, NFTMatch.etherType(0x0800) + Self.dhcpClient
                     + [.payload(.transport, offset: 8 + 28, length: 6), .compare(equal: false, mac)]
                     + drop(p.counterName(.dhcpNospoof)))
            }
            if p.protection.contains(ip) {
                let c4 = chain + "/ip4", c6 = chain + "/ip6", ca = chain + "/arp"
                for c in [c4, c6, ca] { r.append(NFTChainRequest.add(f, table: table, c)) }
                rule(chain, NFTMatch.etherType(0x0800) + [.verdict(.goto(c4))])
                rule(chain, NFTMatch.etherType(0x86DD) + [.verdict(.goto(c6))])
                rule(chain, NFTMatch.etherType(0x0806) + [.verdict(.goto(ca))])
                let v4 = p.allowed.filter { $0.address.isV4 }
                let v6 = p.allowed.filter { !$0.address.isV4 }
                for a in v4 {
                    rule(c4, NFTMatch.prefix(.payload(.network, offset: 12, length: 4), a.network.address.bytes, bits: a.length)
                         + [.verdict(.accept)])
                }
                // A DHCP client has no address yet: 0.0.0.0 → UDP 67 is allowed.
                rule(c4, NFTMatch.prefix(.payload(.network, offset: 12, length: 4), [0, 0, 0, 0], bits: 32) + Self.dhcpClient
                     + [.verdict(.accept)])
                rule(c4, drop(p.counterName(ip)))
                let implicit6 = [try! IPPrefix(address: p.linkLocal, length: 128), try! IPPrefix("::/128")]
                for a in v6 + implicit6 {
                    rule(c6, NFTMatch.prefix(.payload(.network, offset: 8, length: 16), a.network.address.bytes, bits: a.length)
                         + [.verdict(.accept)])
                }
                rule(c6, drop(p.counterName(ip)))
                // ARP must be Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4) for the
                // offsets below to mean anything.
                rule(ca, [.payload(.network, offset: 0, length: 6), .compare(equal: false, [0, 1, 8, 0, 6, 4])] + drop(p.counterName(ip)))
                if p.protection.contains(macKind) { rule(ca, arpSenderMAC) }
                for a in v4 + [try! IPPrefix("0.0.0.0/32")] {
                    rule(ca, NFTMatch.prefix(.payload(.network, offset: 14, length: 4), a.network.address.bytes, bits: a.length)
                         + [.verdict(.accept)])
                }
                rule(ca, drop(p.counterName(ip)))
            }
            if p.protection.contains(.restricted) {
                if !p.protection.contains(ip) {
                    for t: UInt16 in [0x0800, 0x86DD, 0x0806] { rule(chain, NFTMatch.etherType(t) + [.verdict(.accept)]) }
                }
                rule(chain, drop(p.counterName(.restricted)))
            }
        }
        r += NFTSetRequest.addInterfaceElements(f, table: table, set: "vnics", vnicElements)
        r += NFTSetRequest.addInterfaceElements(f, table: table, set: "tenants", ports.map { ($0.device, .goto(Self.tenantChain($0.tenant))) })
        for t in tenants {
            r += NFTSetRequest.addInterfaceElements(f, table: table, set: Self.tenantPorts(t),
                                                    ports.filter { $0.tenant == t }.map { ($0.device, nil) })
        }
        return r + rules
    }

    /// `ip protocol udp udp sport 68 udp dport 67`
    static let dhcpClient: [NFTExpression] = [
        .payload(.network, offset: 9, length: 1), .compare(equal: true, [17]),
        .payload(.transport, offset: 0, length: 4), .compare(equal: true, [0, 68, 0, 67]),
    ]

    /// A fingerprint of the rules this ruleset makes, computed from the model (cheap: no
    /// message is built) and from ``layoutFingerprint`` (so a Quiver whose rule layout changed
    /// never mistakes an older table for current). Equal fingerprints mean equal rules.
    public var fingerprint: String {
        var h = Self.layoutFingerprint
        func mix(_ s: String) { for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }; h = (h ^ 0x1F) &* 0x0000_0100_0000_01B3 }
        mix(table)
        for p in ports {
            mix(p.device); mix(p.tenant); mix(p.mac.description)
            mix(ProtectionKind.allCases.filter { p.protection.contains($0) }.map(\.rawValue).joined(separator: ","))
            mix(p.allowed.map(\.description).joined(separator: ","))
        }
        return String(h, radix: 16)
    }

    /// FNV-1a of the messages for a sample port with every kind on: changes whenever the way
    /// rules are encoded changes.
    static let layoutFingerprint: UInt64 = {
        let sample = Ruleset(table: "t", ownerTag: "o", ports: [
            ProtectedPort(device: "d", tenant: "t", mac: try! MACAddress(bytes: [2, 0, 0, 0, 0, 1]), protection: Set(ProtectionKind.allCases),
                          allowed: [try! IPPrefix("10.0.0.1/32"), try! IPPrefix("fd00::1/128")]),
        ])
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for r in sample.body() { for b in r.message.bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 } }
        return h
    }()

    /// The table's comment: owner tag and fingerprint.
    public var comment: String { "\(ownerTag) \(fingerprint)" }

    /// How many chains, sets and counters the table holds when installed (the kernel's
    /// `NFTA_TABLE_USE`): a cheap check that nobody deleted parts of it.
    public var expectedUse: UInt32 {
        var n = 2 + 2 + 3 * tenants.count
        for p in ports where !p.protection.isEmpty {
            n += 1 + (p.protection.contains(.ipNospoof) ? 3 : 0) + p.protection.count
        }
        return UInt32(n)
    }

    /// The whole transaction: make sure the table exists, delete it with everything in it, and
    /// build it again — atomically, so there is never a moment without rules and never a
    /// duplicate.
    public func transaction() -> [NetlinkRequest] {
        let c = comment
        return [NFTTableRequest.add(Self.family, table, comment: c), NFTTableRequest.delete(Self.family, table),
                NFTTableRequest.add(Self.family, table, comment: c)] + body()
    }
}
