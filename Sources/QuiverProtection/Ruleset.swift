import QuiverKernel
import QuiverNetlink

/// The whole nftables ruleset of one topology: one `bridge` table holding
/// - base chain `protect` (prerouting): `iifname vmap @vnics` → each VNIC's own chain;
/// - base chain `isolate` (forward, once per output port, so floods too): `oifname vmap @tenants`
///   → the output port's tenant chain, which drops frames whose input port is not that tenant's;
/// - per VNIC chains `vnic/DEV` (+ `/ip4`, `/ip6`, `/arp`) that drop spoofed frames into named
///   counters `DEV/mac`, `DEV/ip`, `DEV/restricted`, `DEV/dhcp`; per tenant `tenant/N/isolation`.
///
/// Macvtap VNICs (``PortAttachment/macvtap``) bypass the bridge hooks, so with any of them the
/// topology also gets a `netdev` table of the same name, hooked on those devices by name:
/// - `out` (egress: what the guest sends): `oifname vmap @origin` marks the frame with its
///   tenant's mark, then `oifname vmap @vnics` → the same per-VNIC chains as above;
/// - `in` (ingress: what the guest gets): `iifname vmap @tenants` → `tenant/N`, which drops frames
///   carrying another tenant's mark.
/// The bridge table then marks frames from its ports the same way (`protect`: `iifname vmap
/// @origin`) and checks marks where frames from macvtaps reach its ports (`isolate-local`, the
/// output hook: `oifname vmap @local` → `tenant/N/local`). Marks are `markBase | tenant number`;
/// a frame without one of this topology's marks (from the wire under a lower link) is not a
/// tenant's and passes.
///
/// Pure: it only builds requests. Installing them is ``Firewall``'s job, as one transaction.
public struct Ruleset: Sendable, Equatable {
    public static let family = NFTFamily.bridge
    /// The family of the macvtap half.
    public static let macvtapFamily = NFTFamily.netdev
    public var table: String
    /// Written into the table's comment, with the fingerprint: `quiver:lab/ 1a2b...`.
    public var ownerTag: String
    public var ports: [ProtectedPort]
    /// Addresses the bridge answers ARP and neighbour solicitations for (remote endpoints of a
    /// VXLAN segment), with their tenants: only that tenant's ports may ask (``SegmentRules``).
    public var suppressed: [SuppressedAddress] = []
    /// The underlay allow-list of a node of a multi-node fabric: an `inet` table of the same name.
    public var underlay: UnderlayGuard?

    public init(table: String, ownerTag: String, ports: [ProtectedPort]) {
        self.table = table
        self.ownerTag = ownerTag
        self.ports = ports
    }

    public var tenants: [String] {
        var seen = Set<String>()
        return ports.map(\.tenant).filter { seen.insert($0).inserted }
    }

    var bridgePorts: [ProtectedPort] { ports.filter { $0.attachment == .bridgePort } }
    var macvtapPorts: [ProtectedPort] { ports.filter { $0.attachment == .macvtap } }
    /// Whether the `netdev` half exists.
    public var hasMacvtaps: Bool { ports.contains { $0.attachment == .macvtap } }
    /// Tenants with at least one port of this attachment, in ``tenants`` order.
    func tenants(_ a: PortAttachment) -> [String] { tenants.filter { t in ports.contains { $0.tenant == t && $0.attachment == a } } }

    /// This topology's mark range: `0x51XX0000`, XX from the table name; tenant N (from 1, in
    /// file order) marks its frames `markBase | N`.
    public var markBase: UInt32 { 0x5100_0000 | (StableHash.fnv1a32(table) & 0xFF) << 16 }
    public func mark(_ tenant: String) -> UInt32 { markBase | UInt32((tenants.firstIndex(of: tenant) ?? 0) + 1) }

    public static func vnicChain(_ device: String) -> String { "vnic/\(device)" }
    public static func tenantChain(_ tenant: String) -> String { "tenant/\(tenant)" }
    public static func tenantPorts(_ tenant: String) -> String { "ports/\(tenant)" }
    public static func isolationCounter(_ tenant: String) -> String { "tenant/\(tenant)/isolation" }
    static func markChain(_ tenant: String) -> String { "mark/\(tenant)" }
    static func localChain(_ tenant: String) -> String { "tenant/\(tenant)/local" }
    /// The named counter of a VNIC's drops of one kind: `DEV/mac`, `DEV/ip`, …
    public static func counter(device: String, _ kind: ProtectionKind) -> String { "\(device)/\(kind.counter)" }

    /// The bridge table's contents (without the table itself), in an order the kernel accepts
    /// within one transaction: counters, chains and sets before the rules and elements that name
    /// them.
    public func body() -> [NetlinkRequest] {
        let f = Self.family
        let bridged = bridgePorts
        var b = Builder(family: f, table: table)
        b.requests.append(NFTChainRequest.addBase(f, table: table, "protect", hook: .prerouting, priority: -200))
        if hasMacvtaps {
            // Marks first: the verdict map below jumps to `vnic/DEV` with goto, never to return.
            b.requests.append(NFTSetRequest.addInterfaceSet(f, table: table, "origin", id: 3, verdictMap: true, size: bridged.count))
            b.rule("protect", [.meta(.inputInterfaceName), .lookup(set: "origin", map: true, inverted: false)])
        }
        b.requests.append(NFTChainRequest.addBase(f, table: table, "isolate", hook: .forward, priority: -200))
        b.requests.append(NFTSetRequest.addInterfaceSet(f, table: table, "vnics", id: 1, verdictMap: true,
                                                        size: bridged.filter { !$0.protection.isEmpty }.count))
        b.requests.append(NFTSetRequest.addInterfaceSet(f, table: table, "tenants", id: 2, verdictMap: true, size: bridged.count))
        b.suppressionGuards(suppressed)
        b.rule("protect", [.meta(.inputInterfaceName), .lookup(set: "vnics", map: true, inverted: false)])
        b.rule("isolate", [.meta(.outputInterfaceName), .lookup(set: "tenants", map: true, inverted: false)])

        let bridgeTenants = tenants(.bridgePort)
        for (i, t) in bridgeTenants.enumerated() {
            let chain = Self.tenantChain(t), set = Self.tenantPorts(t), counter = Self.isolationCounter(t)
            b.requests.append(NFTCounterRequest.add(f, table: table, counter))
            b.requests.append(NFTChainRequest.add(f, table: table, chain))
            b.requests.append(NFTSetRequest.addInterfaceSet(f, table: table, set, id: UInt32(16 + i), verdictMap: false,
                                                            size: bridged.filter { $0.tenant == t }.count))
            b.rule(chain, [.meta(.inputInterfaceName), .lookup(set: set, map: false, inverted: true)] + Builder.drop(counter))
        }
        var elements: [NetlinkRequest] = []
        if hasMacvtaps {
            b.requests.append(NFTChainRequest.addBase(f, table: table, "isolate-local", hook: .output, priority: -200))
            b.requests.append(NFTSetRequest.addInterfaceSet(f, table: table, "local", id: 4, verdictMap: true, size: bridged.count))
            b.rule("isolate-local", [.meta(.outputInterfaceName), .lookup(set: "local", map: true, inverted: false)])
            for t in bridgeTenants {
                b.markChain(Self.markChain(t), mark(t))
                b.otherTenantsDrop(Self.localChain(t), own: mark(t), base: markBase, counter: Self.isolationCounter(t))
            }
            elements += NFTSetRequest.addInterfaceElements(f, table: table, set: "origin", bridged.map { ($0.device, .jump(Self.markChain($0.tenant))) })
            elements += NFTSetRequest.addInterfaceElements(f, table: table, set: "local", bridged.map { ($0.device, .goto(Self.localChain($0.tenant))) })
        }
        for p in bridged where !p.protection.isEmpty { b.protectionChains(p) }
        elements += b.linkLayerChecks(bridged, port: .inputInterfaceName, ids: (5, 6))
        elements += NFTSetRequest.addInterfaceElements(f, table: table, set: "vnics",
                                                       bridged.filter { !$0.protection.isEmpty }.map { ($0.device, .goto(Self.vnicChain($0.device))) })
        elements += NFTSetRequest.addInterfaceElements(f, table: table, set: "tenants", bridged.map { ($0.device, .goto(Self.tenantChain($0.tenant))) })
        for t in bridgeTenants {
            elements += NFTSetRequest.addInterfaceElements(f, table: table, set: Self.tenantPorts(t),
                                                           bridged.filter { $0.tenant == t }.map { ($0.device, nil) })
        }
        return b.requests + elements + b.rules
    }

    /// The `netdev` table's contents (empty without macvtaps).
    public func macvtapBody() -> [NetlinkRequest] {
        let macvtaps = macvtapPorts
        guard !macvtaps.isEmpty else { return [] }
        let f = Self.macvtapFamily
        let devices = macvtaps.map(\.device)
        var b = Builder(family: f, table: table)
        b.requests.append(NFTChainRequest.addBase(f, table: table, "out", hook: .egress, priority: -200, devices: devices))
        b.requests.append(NFTChainRequest.addBase(f, table: table, "in", hook: .ingress, priority: -200, devices: devices))
        b.requests.append(NFTSetRequest.addInterfaceSet(f, table: table, "origin", id: 1001, verdictMap: true, size: macvtaps.count))
        b.requests.append(NFTSetRequest.addInterfaceSet(f, table: table, "vnics", id: 1002, verdictMap: true,
                                                        size: macvtaps.filter { !$0.protection.isEmpty }.count))
        b.requests.append(NFTSetRequest.addInterfaceSet(f, table: table, "tenants", id: 1003, verdictMap: true, size: macvtaps.count))
        b.rule("out", [.meta(.outputInterfaceName), .lookup(set: "origin", map: true, inverted: false)])
        b.rule("out", [.meta(.outputInterfaceName), .lookup(set: "vnics", map: true, inverted: false)])
        b.rule("in", [.meta(.inputInterfaceName), .lookup(set: "tenants", map: true, inverted: false)])
        for t in tenants(.macvtap) {
            b.requests.append(NFTCounterRequest.add(f, table: table, Self.isolationCounter(t)))
            b.markChain(Self.markChain(t), mark(t))
            b.otherTenantsDrop(Self.tenantChain(t), own: mark(t), base: markBase, counter: Self.isolationCounter(t))
        }
        for p in macvtaps where !p.protection.isEmpty { b.protectionChains(p) }
        var elements: [NetlinkRequest] = b.linkLayerChecks(macvtaps, port: .outputInterfaceName, ids: (1004, 1005))
        elements += NFTSetRequest.addInterfaceElements(f, table: table, set: "origin", macvtaps.map { ($0.device, .jump(Self.markChain($0.tenant))) })
        elements += NFTSetRequest.addInterfaceElements(f, table: table, set: "vnics",
                                                       macvtaps.filter { !$0.protection.isEmpty }.map { ($0.device, .goto(Self.vnicChain($0.device))) })
        elements += NFTSetRequest.addInterfaceElements(f, table: table, set: "tenants", macvtaps.map { ($0.device, .goto(Self.tenantChain($0.tenant))) })
        return b.requests + elements + b.rules
    }

    /// Collects object-creating requests and rules separately, so rules go last.
    struct Builder {
        let family: NFTFamily
        let table: String
        var requests: [NetlinkRequest] = []
        var rules: [NetlinkRequest] = []

        init(family: NFTFamily, table: String) {
            self.family = family
            self.table = table
        }

        static func drop(_ counter: String) -> [NFTExpression] { [.counter(named: counter), .verdict(.drop)] }

        mutating func rule(_ chain: String, _ e: [NFTExpression]) { rules.append(NFTRuleRequest.add(family, table: table, chain: chain, e)) }

        /// A chain that sets `meta mark` and returns.
        mutating func markChain(_ chain: String, _ mark: UInt32) {
            requests.append(NFTChainRequest.add(family, table: table, chain))
            rule(chain, [.load(NFTExpression.markBytes(mark)), .setMeta(.mark)])
        }

        /// A chain that drops (and counts) frames marked by another tenant of the topology:
        /// `meta mark & 0xffff0000 == base meta mark != own counter name C drop`.
        mutating func otherTenantsDrop(_ chain: String, own: UInt32, base: UInt32, counter: String) {
            requests.append(NFTChainRequest.add(family, table: table, chain))
            rule(chain, [.meta(.mark), .mask(NFTExpression.markBytes(0xFFFF_0000)), .compare(equal: true, NFTExpression.markBytes(base)),
                         .meta(.mark), .compare(equal: false, NFTExpression.markBytes(own))] + Self.drop(counter))
        }

        /// `vnic/DEV/ip6` under ip-nospoof. A VNIC that does not speak IPv6 may send none of it.
        /// One that does: the unspecified source `::` only for duplicate address detection (a
        /// neighbour solicitation for one of the VNIC's own addresses, `/dad`) and MLD reports
        /// (`/ip6-unspecified`); neighbour discovery's own checks (`/nd`) before any source is
        /// accepted; then its allowed prefixes and its link-local address.
        mutating func ipv6Sources(_ c6: String, _ p: ProtectedPort) {
            let counter = p.counterName(.ipNospoof)
            guard p.ipv6 else {
                rule(c6, Self.drop(counter))
                return
            }
            let chain = Ruleset.vnicChain(p.device)
            let c6u = chain + "/ip6-unspecified", dad = chain + "/dad", nd = chain + "/nd"
            for c in [c6u, dad] { requests.append(NFTChainRequest.add(family, table: table, c)) }
            rule(c6, [.payload(.network, offset: 8, length: 16), .compare(equal: true, [UInt8](repeating: 0, count: 16)), .verdict(.goto(c6u))])
            rule(c6, [.meta(.l4proto), .compare(equal: true, [58]), .verdict(.jump(nd))])
            let own6 = p.allowed.filter { !$0.address.isV4 } + [p.linkLocal.hostPrefix]
            for a in own6 {
                rule(c6, NFTMatch.prefix(.payload(.network, offset: 8, length: 16), a.network.address.bytes, bits: a.length) + [.verdict(.accept)])
            }
            rule(c6, Self.drop(counter))
            rule(c6u, [.meta(.l4proto), .compare(equal: false, [58])] + Self.drop(counter))
            for t: UInt8 in [143, 131] { rule(c6u, Ruleset.icmp6Type(t) + [.verdict(.accept)]) } // MLDv2, MLDv1 reports
            rule(c6u, Ruleset.icmp6Type(135) + [.verdict(.goto(dad))])
            rule(c6u, Self.drop(counter))
            for a in own6 {
                rule(dad, NFTMatch.prefix(.payload(.transport, offset: 8, length: 16), a.network.address.bytes, bits: a.length) + [.verdict(.accept)])
            }
            rule(dad, Self.drop(counter))
        }

        /// The table's `nd-lladdr` chain, shared by every VNIC whose neighbour discovery
        /// link-layer addresses are checked (mac-nospoof): for each message type, one rule per
        /// option slot reads the slot and, where it reads as a link-layer address option (type 1
        /// or 2, length 1), looks up `PORT . ADDRESS` in the set `nd-macs` of every such VNIC's
        /// name and MAC — an address that is not the sending VNIC's own is not in it — and one rule
        /// refuses a message longer than its slots reach. A refused message goes, by the map
        /// `nd-lladdr-drop`, to the sending VNIC's `vnic/DEV/lladdr`, which counts it in
        /// `DEV/mac` and drops it. 22 rules for the whole table, where each VNIC would need them.
        /// `port`: the meta key naming the VNIC (bridge: input interface; a macvtap's egress:
        /// output interface). Returns the set and map elements.
        mutating func linkLayerChecks(_ ports: [ProtectedPort], port: NFTMetaKey, ids: (UInt32, UInt32)) -> [NetlinkRequest] {
            let checked = ports.filter(\.checksLinkLayerOptions)
            guard !checked.isEmpty else { return [] }
            let chain = Ruleset.linkLayerChain, macs = "nd-macs", refuse = "nd-lladdr-drop"
            requests.append(NFTChainRequest.add(family, table: table, chain))
            requests.append(NFTSetRequest.addInterfaceMACSet(family, table: table, macs, id: ids.0, size: checked.count))
            requests.append(NFTSetRequest.addInterfaceSet(family, table: table, refuse, id: ids.1, verdictMap: true, size: checked.count))
            let toDrop: [NFTExpression] = [.meta(port), .lookup(set: refuse, map: true, inverted: false)]
            for (t, start, slots) in Ruleset.ndOptions {
                let bound = start + 8 * slots
                rule(chain, Ruleset.icmp6Type(t) + [Ruleset.ip6PayloadLength, .order(.greater, [UInt8(bound >> 8), UInt8(bound & 0xFF)])] + toDrop)
                for k in 0..<slots {
                    let o = start + 8 * k
                    rule(chain, Ruleset.icmp6Type(t) + [.payload(.transport, offset: o, length: 2), .mask([0xFC, 0xFF]), .compare(equal: true, [0, 1]),
                                                        .meta(port), .payloadInto(register: 2, .transport, offset: o + 2, length: 6),
                                                        .lookup(set: macs, map: false, inverted: true)] + toDrop)
                }
            }
            return NFTSetRequest.addInterfaceMACElements(family, table: table, set: macs, checked.map { ($0.device, $0.mac.bytes) })
                + NFTSetRequest.addInterfaceElements(family, table: table, set: refuse,
                                                     checked.map { ($0.device, .goto(Ruleset.vnicChain($0.device) + "/lladdr")) })
        }

        /// `vnic/DEV/nd`, for ICMPv6 from the VNIC (jumped to, so it returns when nothing
        /// matches):
        /// - mac-nospoof: every link-layer address option (source or target: type 1 or 2, one
        ///   8-byte unit) of a router or neighbour solicitation or advertisement must carry the
        ///   VNIC's MAC — checked by the table's shared chain (``linkLayerChecks(_:port:ids:)``);
        /// - ip-nospoof: a neighbour advertisement's target must be one of the VNIC's own addresses
        ///   (its allowed IPv6 prefixes or its link-local address), and redirects are dropped
        ///   (a VNIC is no tenant's first-hop router in Quiver's fabric).
        mutating func neighbourDiscovery(_ nd: String, _ p: ProtectedPort) {
            let drop = Self.drop
            if p.checksLinkLayerOptions {
                // The table's one chain of option checks; a VNIC's own drop chain counts its drops.
                let refuse = Ruleset.vnicChain(p.device) + "/lladdr"
                requests.append(NFTChainRequest.add(family, table: table, refuse))
                rule(refuse, drop(p.counterName(.macNospoof)))
                rule(nd, [.verdict(.jump(Ruleset.linkLayerChain))])
            }
            if p.protection.contains(.ipNospoof) {
                let na = Ruleset.vnicChain(p.device) + "/na"
                requests.append(NFTChainRequest.add(family, table: table, na))
                rule(nd, Ruleset.icmp6Type(137) + drop(p.counterName(.ipNospoof)))
                rule(nd, Ruleset.icmp6Type(136) + [.verdict(.goto(na))])
                let own6 = p.allowed.filter { !$0.address.isV4 } + [p.linkLocal.hostPrefix]
                for a in own6 {
                    rule(na, NFTMatch.prefix(.payload(.transport, offset: 8, length: 16), a.network.address.bytes, bits: a.length)
                         + [.verdict(.return)])
                }
                rule(na, drop(p.counterName(.ipNospoof)))
            }
        }

        /// `vnic/DEV/arp` under ip-nospoof: Ethernet/IPv4 ARP only (htype 1, ptype 0x0800, hlen 6,
        /// plen 4, so that the offsets below mean anything), its sender MAC the VNIC's under
        /// mac-nospoof, its sender address one of the allowed ones or 0.0.0.0 (probes).
        mutating func arpSources(_ ca: String, _ p: ProtectedPort) {
            let ip = p.counterName(.ipNospoof)
            rule(ca, [.payload(.network, offset: 0, length: 6), .compare(equal: false, [0, 1, 8, 0, 6, 4])] + Self.drop(ip))
            if p.protection.contains(.macNospoof) { rule(ca, Self.arpSenderMAC(p)) }
            for a in p.allowed.filter({ $0.address.isV4 }) + [IPAddress(0, 0, 0, 0).hostPrefix] {
                rule(ca, NFTMatch.prefix(.payload(.network, offset: 14, length: 4), a.network.address.bytes, bits: a.length)
                     + [.verdict(.accept)])
            }
            rule(ca, Self.drop(ip))
        }

        /// The ARP sender hardware address (Ethernet/IPv4 ARP: after 8 bytes of header) is not
        /// the VNIC's: counted in `DEV/mac` and dropped.
        static func arpSenderMAC(_ p: ProtectedPort) -> [NFTExpression] {
            [.payload(.network, offset: 8, length: 6), .compare(equal: false, p.mac.bytes)] + drop(p.counterName(.macNospoof))
        }

        /// `vnic/DEV` and its sub-chains and counters: what the VNIC may send.
        mutating func protectionChains(_ p: ProtectedPort) {
            let f = family
            let drop = Self.drop
            let chain = Ruleset.vnicChain(p.device)
            requests.append(NFTChainRequest.add(f, table: table, chain))
            for k in ProtectionKind.allCases where p.protection.contains(k) {
                requests.append(NFTCounterRequest.add(f, table: table, p.counterName(k)))
            }
            let mac = p.mac.bytes
            let ip = ProtectionKind.ipNospoof, macKind = ProtectionKind.macNospoof
            let arpSenderMAC = Self.arpSenderMAC(p)
            let nd = chain + "/nd"
            if p.hasNeighbourDiscoveryChain {
                requests.append(NFTChainRequest.add(f, table: table, nd))
                neighbourDiscovery(nd, p)
            }
            if p.protection.contains(macKind) {
                rule(chain, [NFTMatch.etherSource(), .compare(equal: false, mac)] + drop(p.counterName(macKind)))
                // With ip-nospoof the ARP chain checks it; IP frames then meet one rule fewer.
                if !p.protection.contains(ip) {
                    rule(chain, NFTMatch.etherType(0x0806) + arpSenderMAC)
                    // Without ip-nospoof the IPv6 chain below does not exist: ICMPv6 goes
                    // through the neighbour discovery checks from here.
                    rule(chain, NFTMatch.etherType(0x86DD) + [.meta(.l4proto), .compare(equal: true, [58]), .verdict(.jump(nd))])
                }
            }
            if p.protection.contains(.dhcpNospoof) {
                // UDP 68 → 67 whose BOOTP chaddr (UDP payload offset 28) is not the VNIC's MAC.
                rule(chain, NFTMatch.etherType(0x0800) + Ruleset.dhcpClient
                     + [.payload(.transport, offset: 8 + 28, length: 6), .compare(equal: false, mac)]
                     + drop(p.counterName(.dhcpNospoof)))
            }
            if p.protection.contains(ip) {
                let c4 = chain + "/ip4", c6 = chain + "/ip6", ca = chain + "/arp"
                for c in [c4, c6, ca] { requests.append(NFTChainRequest.add(f, table: table, c)) }
                rule(chain, NFTMatch.etherType(0x0800) + [.verdict(.goto(c4))])
                rule(chain, NFTMatch.etherType(0x86DD) + [.verdict(.goto(c6))])
                rule(chain, NFTMatch.etherType(0x0806) + [.verdict(.goto(ca))])
                let v4 = p.allowed.filter { $0.address.isV4 }
                for a in v4 {
                    rule(c4, NFTMatch.prefix(.payload(.network, offset: 12, length: 4), a.network.address.bytes, bits: a.length)
                         + [.verdict(.accept)])
                }
                // A DHCP client has no address yet: 0.0.0.0 → UDP 67 is allowed.
                rule(c4, NFTMatch.prefix(.payload(.network, offset: 12, length: 4), [0, 0, 0, 0], bits: 32) + Ruleset.dhcpClient
                     + [.verdict(.accept)])
                rule(c4, drop(p.counterName(ip)))
                ipv6Sources(c6, p)
                arpSources(ca, p)
            }
            if p.protection.contains(.restricted) {
                if !p.protection.contains(ip) {
                    for t: UInt16 in [0x0800, 0x86DD, 0x0806] { rule(chain, NFTMatch.etherType(t) + [.verdict(.accept)]) }
                }
                rule(chain, drop(p.counterName(.restricted)))
            }
        }
    }

    /// `icmpv6 type T` (on a packet whose `meta l4proto` is ICMPv6).
    static func icmp6Type(_ t: UInt8) -> [NFTExpression] { [.payload(.transport, offset: 0, length: 1), .compare(equal: true, [t])] }

    /// Where each neighbour discovery message's options start, and how many 8-byte option slots
    /// Quiver reads: router solicitation, advertisement, neighbour solicitation, advertisement.
    /// A message longer than its slots reach is refused, so every option it carries is read.
    static let ndOptions: [(type: UInt8, start: UInt32, slots: UInt32)] = [(133, 8, 2), (134, 16, 12), (135, 24, 2), (136, 24, 2)]

    /// The table's shared chain of neighbour discovery link-layer address checks.
    static let linkLayerChain = "nd-lladdr"

    /// `ip6 payload length`
    static let ip6PayloadLength = NFTExpression.payload(.network, offset: 4, length: 2)

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
            mix(p.attachment.rawValue)
            mix(p.ipv6 ? "6" : "4")
        }
        for a in suppressed { mix(a.address.description); mix(a.tenant) }
        if let u = underlay { mix("underlay"); mix(u.vnis.map(String.init).joined(separator: ",")); mix(u.sources.map(\.description).joined(separator: ",")) }
        return String(h, radix: 16)
    }

    /// FNV-1a of the messages for a sample port with every kind on: changes whenever the way
    /// rules are encoded changes.
    static let layoutFingerprint: UInt64 = {
        let fd00_1 = IPAddress.v6([0xfd] + [UInt8](repeating: 0, count: 14) + [1])
        let sample = Ruleset(table: "t", ownerTag: "o", ports: [
            ProtectedPort(device: "d", tenant: "t", mac: MACAddress(2, 0, 0, 0, 0, 1), protection: Set(ProtectionKind.allCases),
                          allowed: [IPAddress(10, 0, 0, 1).hostPrefix, fd00_1.hostPrefix]),
            ProtectedPort(device: "m", tenant: "u", mac: MACAddress(2, 0, 0, 0, 0, 2), protection: Set(ProtectionKind.allCases),
                          allowed: [IPAddress(10, 0, 0, 2).hostPrefix], attachment: .macvtap),
            ProtectedPort(device: "f", tenant: "t", mac: MACAddress(2, 0, 0, 0, 0, 3), protection: Set(ProtectionKind.allCases),
                          allowed: [IPAddress(10, 0, 0, 3).hostPrefix], ipv6: false),
        ])
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        var withSegments = sample
        withSegments.suppressed = [SuppressedAddress(address: IPAddress(10, 0, 0, 9), tenant: "t"), SuppressedAddress(address: fd00_1, tenant: "t")]
        withSegments.underlay = UnderlayGuard(vnis: [7], sources: [IPAddress(192, 0, 2, 1), fd00_1])
        for r in withSegments.body() + sample.macvtapBody() + withSegments.underlayBody() { for b in r.message.bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 } }
        return h
    }()

    /// The table's comment: owner tag and fingerprint.
    public var comment: String { "\(ownerTag) \(fingerprint)" }

    /// How many chains, sets and counters the tables hold when installed (the kernel's
    /// `NFTA_TABLE_USE`, bridge and netdev added up): a cheap check that nobody deleted parts.
    public var expectedUse: UInt32 {
        func perPort(_ p: ProtectedPort) -> Int { p.protectionObjects }
        func shared(_ ports: [ProtectedPort]) -> Int { Self.sharedObjects(ports) }
        var n = (underlay == nil ? 0 : UnderlayGuard.use) + 2 + 2 + 3 * tenants(.bridgePort).count + bridgePorts.map(perPort).reduce(0, +) + shared(bridgePorts)
        if hasMacvtaps {
            // bridge: `origin`, `local`, `isolate-local`, and mark/N + tenant/N/local per tenant;
            // netdev: two base chains, three maps, per tenant mark/N, tenant/N and its counter.
            n += 3 + 2 * tenants(.bridgePort).count
            n += 2 + 3 + 3 * tenants(.macvtap).count + macvtapPorts.map(perPort).reduce(0, +) + shared(macvtapPorts)
        }
        return UInt32(n)
    }

    /// The shared `nd-lladdr` chain with its set and map, in each table that has a VNIC whose
    /// neighbour discovery link-layer addresses are checked.
    static func sharedObjects(_ ports: [ProtectedPort]) -> Int { ports.contains(where: \.checksLinkLayerOptions) ? 3 : 0 }

    /// The whole transaction: make sure each table exists, delete it with everything in it, and
    /// build it again — atomically, so there is never a moment without rules and never a
    /// duplicate. `netdevPresent`: a netdev table of Quiver's is there (it goes when no macvtap
    /// is left).
    public func transaction(netdevPresent: Bool = false, inetPresent: Bool = false) -> [NetlinkRequest] {
        let c = comment
        var r = [NFTTableRequest.add(Self.family, table, comment: c), NFTTableRequest.delete(Self.family, table),
                 NFTTableRequest.add(Self.family, table, comment: c)] + body()
        if hasMacvtaps {
            r += [NFTTableRequest.add(Self.macvtapFamily, table, comment: c), NFTTableRequest.delete(Self.macvtapFamily, table),
                  NFTTableRequest.add(Self.macvtapFamily, table, comment: c)] + macvtapBody()
        } else if netdevPresent {
            r += [NFTTableRequest.delete(Self.macvtapFamily, table)]
        }
        if underlay != nil {
            r += [NFTTableRequest.add(UnderlayGuard.family, table, comment: c), NFTTableRequest.delete(UnderlayGuard.family, table),
                  NFTTableRequest.add(UnderlayGuard.family, table, comment: c)] + underlayBody()
        } else if inetPresent {
            r += [NFTTableRequest.delete(UnderlayGuard.family, table)]
        }
        return r
    }
}
