import CNetlink
import QuiverKernel
import QuiverNetlink

/// A table of the wanted name exists but Quiver did not make it (its comment lacks the tag).
public struct ForeignTableError: Error, Sendable, CustomStringConvertible {
    public var family: NFTFamily
    public var table: String
    public var comment: String?
    public var description: String {
        "nftables table \(family.name) \(table) exists and is not Quiver's (comment: \(comment.map { "\"\($0)\"" } ?? "none")); "
            + "nothing was changed — delete or rename it (`nft delete table \(family.name) \(table)`) if it is stale"
    }
}

/// The kernel refused a netdev chain hooked on a macvtap that does not exist yet: kernels before
/// 6.16 only hook devices that exist, and the rules must be in place before the macvtaps are made.
public struct MacvtapHooksUnsupported: Error, Sendable, CustomStringConvertible {
    public var underlying: NetlinkTransactionError
    public var description: String {
        "\(underlying); this kernel cannot hook a netdev chain on a device that does not exist yet, which the rules of "
            + "`mode: macvtap` NICs need (Linux 6.16 or later) — use `mode: tap` on this kernel"
    }
}

/// What a VNIC's protection dropped, by kind.
public struct ProtectionCounters: Sendable, Equatable, Codable {
    public var device: String
    public var tenant: String
    /// Kind → (packets, bytes); only the kinds that are on.
    public var drops: [String: DropCount]

    public struct DropCount: Sendable, Equatable, Codable {
        public var packets: UInt64
        public var bytes: UInt64
    }
}

/// Installs, reads and removes a topology's ruleset over an nfnetlink socket in the fabric
/// namespace. Never touches a table it did not make.
public struct Firewall: Sendable {
    public let handle: NetlinkHandle

    /// Opens a netfilter socket in `namespace` (nil: this process's namespace).
    public init(namespace: NetworkNamespace? = nil) throws {
        handle = try NetlinkHandle(namespace: namespace, protocol: NETLINK_NETFILTER)
    }

    public init(handle: NetlinkHandle) { self.handle = handle }

    /// The table `name` of `family` if it is there; throws when its comment lacks `ownerTag`.
    public func ownedTable(_ family: NFTFamily, _ name: String, ownerTag: String) throws -> NFTTable? {
        guard let t = try handle.nftTable(family, name) else { return nil }
        guard t.comment?.hasPrefix(ownerTag + " ") == true else { throw ForeignTableError(family: family, table: name, comment: t.comment) }
        return t
    }

    /// The topology's tables (bridge; netdev for macvtaps; inet for a node's underlay guard),
    /// each nil if absent; throws if one exists and is not ours.
    public func tables(_ table: String, ownerTag: String) throws -> (bridge: NFTTable?, netdev: NFTTable?, inet: NFTTable?) {
        func ours(_ family: NFTFamily) throws -> NFTTable? { try ownedTable(family, table, ownerTag: ownerTag) }
        return (try ours(Ruleset.family), try ours(Ruleset.macvtapFamily), try ours(UnderlayGuard.family))
    }

    /// True when the installed tables already hold exactly `ruleset` (same fingerprint and the
    /// same number of chains, sets and counters).
    public func isCurrent(_ ruleset: Ruleset) throws -> Bool {
        Self.isCurrent(ruleset, try tables(ruleset.table, ownerTag: ruleset.ownerTag))
    }

    static func isCurrent(_ r: Ruleset, _ t: (bridge: NFTTable?, netdev: NFTTable?, inet: NFTTable?)) -> Bool {
        guard let b = t.bridge, b.comment == r.comment else { return false }
        if r.hasMacvtaps ? t.netdev?.comment != r.comment : t.netdev != nil { return false }
        if r.underlay != nil ? t.inet?.comment != r.comment : t.inet != nil { return false }
        return b.use + (t.netdev?.use ?? 0) + (t.inet?.use ?? 0) == r.expectedUse
    }

    /// Makes the kernel hold exactly `ruleset`, in one transaction. Returns false when it already
    /// did (nothing sent, counters kept).
    @discardableResult
    public func install(_ ruleset: Ruleset) throws -> Bool {
        let t = try tables(ruleset.table, ownerTag: ruleset.ownerTag)
        if Self.isCurrent(ruleset, t) { return false }
        do {
            try handle.nftTransaction(ruleset.transaction(netdevPresent: t.netdev != nil, inetPresent: t.inet != nil))
        } catch let e as NetlinkTransactionError where ruleset.hasMacvtaps && e.first.errno == .noSuchFileOrDirectory
            && e.first.context.operation == "create nftables chain" {
            throw MacvtapHooksUnsupported(underlying: e)
        }
        return true
    }

    /// Deletes the tables if they are ours. Returns whether there was one.
    @discardableResult
    public func remove(table: String, ownerTag: String) throws -> Bool {
        let t = try tables(table, ownerTag: ownerTag)
        var requests: [NetlinkRequest] = []
        if t.bridge != nil { requests.append(NFTTableRequest.delete(Ruleset.family, table)) }
        if t.netdev != nil { requests.append(NFTTableRequest.delete(Ruleset.macvtapFamily, table)) }
        if t.inet != nil { requests.append(NFTTableRequest.delete(UnderlayGuard.family, table)) }
        guard !requests.isEmpty else { return false }
        try handle.nftTransaction(requests)
        return true
    }

    /// The named counters of both tables, by name (a tenant's isolation counter, present in
    /// both, is added up).
    public func counters(table: String) throws -> [String: NFTCounter] {
        var all = try handle.nftCounters(Ruleset.family, table: table)
        for (name, c) in try handle.nftCounters(Ruleset.macvtapFamily, table: table).merging(try handle.nftCounters(UnderlayGuard.family, table: table), uniquingKeysWith: { a, _ in a }) {
            if var have = all[name] {
                have.packets += c.packets
                have.bytes += c.bytes
                all[name] = have
            } else {
                all[name] = c
            }
        }
        return all
    }

    /// Every port's drop counters, read with one dump per table.
    public func counters(_ ruleset: Ruleset) throws -> [ProtectionCounters] {
        let all = try counters(table: ruleset.table)
        return ruleset.ports.map { p in
            var drops: [String: ProtectionCounters.DropCount] = [:]
            for k in ProtectionKind.allCases where p.protection.contains(k) {
                if let c = all[p.counterName(k)] { drops[k.counter] = .init(packets: c.packets, bytes: c.bytes) }
            }
            return ProtectionCounters(device: p.device, tenant: p.tenant, drops: drops)
        }
    }

    /// Frames dropped between tenants, per tenant whose port they were headed to.
    public func isolationDrops(_ ruleset: Ruleset) throws -> [String: UInt64] {
        let all = try counters(table: ruleset.table)
        return Dictionary(ruleset.tenants.map { ($0, all[Ruleset.isolationCounter($0)]?.packets ?? 0) }, uniquingKeysWith: { a, _ in a })
    }
}
