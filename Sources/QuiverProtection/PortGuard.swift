import QuiverKernel
import QuiverNetlink

/// Link protection for one endpoint whose host-side device Quiver did not make (a CNI chain's
/// `bridge` or `ptp` veth): tables of its own whose base chains `in` send the device's frames
/// to the same per-VNIC chains and counters a topology's bridge table has (`vnic/DEV`,
/// `DEV/mac`, `DEV/ip`, …), so the semantics are those of docs/ISOLATION.md. On a bridge port
/// that is one `bridge` table; on a routed device an `inet` and an `arp` table (``Placement``).
/// Tenant isolation is the bridge owner's business and is not here.
///
/// Why these hooks and not the device's netdev ingress: a cap on the device redirects what the
/// endpoint sends through an IFB at tc ingress, and the kernel re-injects those frames past the
/// netdev ingress hook (`skb_skip_tc_classify`); the bridge's and the IP and ARP layers' hooks
/// still see them.
///
/// The table's comment is `OWNERTAG FINGERPRINT`: the full tag proves it is the owner's.
public struct PortGuard: Sendable, Equatable {
    /// Where the device meets the node, which decides where the rules hang.
    public enum Placement: String, Sendable, Equatable {
        /// A port of a bridge: one `bridge` table (prerouting).
        case bridgePort
        /// A routed device (a `ptp` veth): an `inet` table (prerouting: IPv4, IPv6) and an `arp`
        /// table (input: ARP), both matching the device by name.
        case routed
    }

    public var table: String
    public var ownerTag: String
    public var port: ProtectedPort
    public var placement: Placement

    public init(table: String, ownerTag: String, port: ProtectedPort, placement: Placement = .bridgePort) {
        self.table = table
        self.ownerTag = ownerTag
        self.port = port
        self.placement = placement
    }

    /// The families of its tables.
    public var families: [NFTFamily] { placement == .bridgePort ? [.bridge] : [.inet, .arp] }
    /// Every family a guard's table may have (GC and DEL look in each).
    public static let allFamilies: [NFTFamily] = [.bridge, .inet, .arp]

    /// One table's contents: chains and counters, then set elements, then rules.
    public func body(_ f: NFTFamily) -> [NetlinkRequest] {
        var b = Ruleset.Builder(family: f, table: table)
        let toPort: [NFTExpression] = [.meta(.inputInterfaceName), .compare(equal: true, NFTExpression.interfaceName(port.device))]
        if f == .arp {
            b.requests.append(NFTChainRequest.addBase(f, table: table, "in", hook: .arpIn, priority: -200))
            let mac = port.protection.contains(.macNospoof), ip = port.protection.contains(.ipNospoof)
            guard mac || ip else { return b.requests }
            let chain = Ruleset.vnicChain(port.device) + "/arp"
            b.requests.append(NFTChainRequest.add(f, table: table, chain))
            for k in [ProtectionKind.macNospoof, .ipNospoof] where port.protection.contains(k) {
                b.requests.append(NFTCounterRequest.add(f, table: table, port.counterName(k)))
            }
            if ip { b.arpSources(chain, port) } else { b.rule(chain, Ruleset.Builder.arpSenderMAC(port)) }
            b.rule("in", toPort + [.verdict(.goto(chain))])
            return b.requests + b.rules
        }
        b.requests.append(NFTChainRequest.addBase(f, table: table, "in", hook: .prerouting, priority: -200))
        guard !port.protection.isEmpty else { return b.requests }
        b.protectionChains(port)
        let elements = b.linkLayerChecks([port], port: .inputInterfaceName, ids: (1, 2))
        b.rule("in", toPort + [.verdict(.goto(Ruleset.vnicChain(port.device)))])
        return b.requests + elements + b.rules
    }

    /// FNV-1a of every message: equal fingerprints mean equal rules (one port: cheap).
    public var fingerprint: String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for f in families { for r in body(f) { for b in r.message.bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 } } }
        return String(h, radix: 16)
    }

    public var comment: String { "\(ownerTag) \(fingerprint)" }

    /// Chains, sets and counters of its installed table of family `f` (`NFTA_TABLE_USE`).
    public func expectedUse(_ f: NFTFamily) -> UInt32 {
        if f == .arp {
            let kinds = [ProtectionKind.macNospoof, .ipNospoof].filter { port.protection.contains($0) }.count
            return UInt32(1 + (kinds > 0 ? 1 + kinds : 0))
        }
        return UInt32(1 + port.protectionObjects + Ruleset.sharedObjects([port]))
    }

    /// Make, empty and refill its tables in one transaction (never a moment without rules), and
    /// drop a table of another placement's family left by an earlier one (`present`).
    public func transaction(present: [NFTFamily] = []) -> [NetlinkRequest] {
        var r: [NetlinkRequest] = []
        for f in families {
            r += [NFTTableRequest.add(f, table, comment: comment), NFTTableRequest.delete(f, table), NFTTableRequest.add(f, table, comment: comment)] + body(f)
        }
        for f in present where !families.contains(f) { r.append(NFTTableRequest.delete(f, table)) }
        return r
    }
}

extension Firewall {
    /// The guard's tables by family, of any placement; throws when a table of its name is not the owner's.
    public func tables(of name: String, ownerTag: String) throws -> [NFTFamily: NFTTable] {
        var out: [NFTFamily: NFTTable] = [:]
        for f in PortGuard.allFamilies { if let t = try ownedTable(f, name, ownerTag: ownerTag) { out[f] = t } }
        return out
    }

    static func isCurrent(_ g: PortGuard, _ have: [NFTFamily: NFTTable]) -> Bool {
        guard Set(have.keys) == Set(g.families) else { return false }
        return g.families.allSatisfy { have[$0]?.comment == g.comment && have[$0]?.use == g.expectedUse($0) }
    }

    /// The kernel holds exactly the guard's rules.
    public func isCurrent(_ g: PortGuard) throws -> Bool {
        Self.isCurrent(g, try tables(of: g.table, ownerTag: g.ownerTag))
    }

    /// Makes the kernel hold exactly the guard, in one transaction; false when it already did.
    @discardableResult
    public func install(_ g: PortGuard) throws -> Bool {
        let have = try tables(of: g.table, ownerTag: g.ownerTag)
        if Self.isCurrent(g, have) { return false }
        try handle.nftTransaction(g.transaction(present: Array(have.keys)))
        return true
    }

    /// Deletes the guard tables `name` whose comment carries `ownerTag`; whether there was one.
    /// Throws, deleting nothing, when a table of that name is not the owner's.
    @discardableResult
    public func removePortGuard(table name: String, ownerTag: String) throws -> Bool {
        let have = try tables(of: name, ownerTag: ownerTag)
        guard !have.isEmpty else { return false }
        try handle.nftTransaction(have.keys.sorted { $0.rawValue < $1.rawValue }.map { NFTTableRequest.delete($0, name) })
        return true
    }

    /// The guard's drop counters, by kind (a kind counted in both of a routed guard's tables is added up).
    public func counters(_ g: PortGuard) throws -> ProtectionCounters {
        var drops: [String: ProtectionCounters.DropCount] = [:]
        for f in g.families {
            let all = try handle.nftCounters(f, table: g.table)
            for k in ProtectionKind.allCases where g.port.protection.contains(k) {
                guard let c = all[g.port.counterName(k)] else { continue }
                let had = drops[k.counter] ?? .init(packets: 0, bytes: 0)
                drops[k.counter] = .init(packets: had.packets + c.packets, bytes: had.bytes + c.bytes)
            }
        }
        return ProtectionCounters(device: g.port.device, tenant: g.port.tenant, drops: drops)
    }
}
