import QuiverKernel
import QuiverNetlink

/// Link protection for one endpoint whose host-side device is a port of a bridge Quiver does not
/// own (a CNI chain's `bridge` plugin): a `bridge` table of its own whose base chain `in`
/// (prerouting) sends the device's frames to the same per-VNIC chains and counters a topology's
/// bridge table has (`vnic/DEV`, `DEV/mac`, `DEV/ip`, …), so the semantics are those of
/// docs/ISOLATION.md. Tenant isolation is the bridge owner's business and is not here.
///
/// Why the bridge hook and not the device's netdev ingress: a cap on the device redirects what
/// the endpoint sends through an IFB at tc ingress, and the kernel re-injects those frames past
/// the netdev ingress hook (`skb_skip_tc_classify`); the bridge's hooks still see them.
///
/// The table's comment is `OWNERTAG FINGERPRINT`: the full tag proves it is the owner's.
public struct PortGuard: Sendable, Equatable {
    public static let family = NFTFamily.bridge
    public var table: String
    public var ownerTag: String
    public var port: ProtectedPort

    public init(table: String, ownerTag: String, port: ProtectedPort) {
        self.table = table
        self.ownerTag = ownerTag
        self.port = port
    }

    /// The table's contents: chains and counters, then set elements, then rules.
    public func body() -> [NetlinkRequest] {
        let f = Self.family
        var b = Ruleset.Builder(family: f, table: table)
        b.requests.append(NFTChainRequest.addBase(f, table: table, "in", hook: .prerouting, priority: -200))
        guard !port.protection.isEmpty else { return b.requests }
        b.protectionChains(port)
        let elements = b.linkLayerChecks([port], port: .inputInterfaceName, ids: (1, 2))
        b.rule("in", [.meta(.inputInterfaceName), .compare(equal: true, NFTExpression.interfaceName(port.device)),
                      .verdict(.goto(Ruleset.vnicChain(port.device)))])
        return b.requests + elements + b.rules
    }

    /// FNV-1a of every message: equal fingerprints mean equal rules (one port: cheap).
    public var fingerprint: String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for r in body() { for b in r.message.bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 } }
        return String(h, radix: 16)
    }

    public var comment: String { "\(ownerTag) \(fingerprint)" }

    /// Chains, sets and counters of the installed table (`NFTA_TABLE_USE`).
    public var expectedUse: UInt32 { UInt32(1 + port.protectionObjects + Ruleset.sharedObjects([port])) }

    /// Make, empty and refill the table in one transaction: never a moment without rules.
    public var transaction: [NetlinkRequest] {
        [NFTTableRequest.add(Self.family, table, comment: comment), NFTTableRequest.delete(Self.family, table),
         NFTTableRequest.add(Self.family, table, comment: comment)] + body()
    }
}

extension Firewall {
    /// The guard's table if it is there; throws when a table of that name is not the owner's.
    func table(of g: PortGuard) throws -> NFTTable? {
        try ownedTable(PortGuard.family, g.table, ownerTag: g.ownerTag)
    }

    public func ownedTable(_ family: NFTFamily, _ name: String, ownerTag: String) throws -> NFTTable? {
        guard let t = try handle.nftTable(family, name) else { return nil }
        guard t.comment?.hasPrefix(ownerTag + " ") == true else { throw ForeignTableError(family: family, table: name, comment: t.comment) }
        return t
    }

    /// The kernel holds exactly the guard's rules.
    public func isCurrent(_ g: PortGuard) throws -> Bool {
        guard let t = try table(of: g) else { return false }
        return t.comment == g.comment && t.use == g.expectedUse
    }

    /// Makes the kernel hold exactly the guard, in one transaction; false when it already did.
    @discardableResult
    public func install(_ g: PortGuard) throws -> Bool {
        if try isCurrent(g) { return false }
        try handle.nftTransaction(g.transaction)
        return true
    }

    /// Deletes the bridge table `name` if its comment carries `ownerTag`; whether there was one.
    @discardableResult
    public func removePortGuard(table name: String, ownerTag: String) throws -> Bool {
        guard try ownedTable(PortGuard.family, name, ownerTag: ownerTag) != nil else { return false }
        try handle.nftTransaction([NFTTableRequest.delete(PortGuard.family, name)])
        return true
    }

    /// The guard's drop counters, by kind.
    public func counters(_ g: PortGuard) throws -> ProtectionCounters {
        let all = try handle.nftCounters(PortGuard.family, table: g.table)
        var drops: [String: ProtectionCounters.DropCount] = [:]
        for k in ProtectionKind.allCases where g.port.protection.contains(k) {
            if let c = all[g.port.counterName(k)] { drops[k.counter] = .init(packets: c.packets, bytes: c.bytes) }
        }
        return ProtectionCounters(device: g.port.device, tenant: g.port.tenant, drops: drops)
    }
}
