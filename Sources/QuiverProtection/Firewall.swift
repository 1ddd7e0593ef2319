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

    /// The table's state: nil if absent; throws if it exists and is not ours.
    public func installed(_ table: String, ownerTag: String) throws -> NFTTable? {
        guard let t = try handle.nftTable(Ruleset.family, table) else { return nil }
        guard t.comment?.hasPrefix(ownerTag + " ") == true else {
            throw ForeignTableError(family: Ruleset.family, table: table, comment: t.comment)
        }
        return t
    }

    /// True when the installed table already holds exactly `ruleset` (same fingerprint and the
    /// same number of chains, sets and counters).
    public func isCurrent(_ ruleset: Ruleset) throws -> Bool {
        guard let t = try installed(ruleset.table, ownerTag: ruleset.ownerTag) else { return false }
        return t.comment == ruleset.comment && t.use == ruleset.expectedUse
    }

    /// Makes the kernel hold exactly `ruleset`, in one transaction. Returns false when it already
    /// did (nothing sent, counters kept).
    @discardableResult
    public func install(_ ruleset: Ruleset) throws -> Bool {
        if try isCurrent(ruleset) { return false }
        try handle.nftTransaction(ruleset.transaction())
        return true
    }

    /// Deletes the table if it is ours. Returns whether there was one.
    @discardableResult
    public func remove(table: String, ownerTag: String) throws -> Bool {
        guard try installed(table, ownerTag: ownerTag) != nil else { return false }
        try handle.nftTransaction([NFTTableRequest.delete(Ruleset.family, table)])
        return true
    }

    /// Every port's drop counters, read with one dump.
    public func counters(_ ruleset: Ruleset) throws -> [ProtectionCounters] {
        let all = try handle.nftCounters(Ruleset.family, table: ruleset.table)
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
        let all = try handle.nftCounters(Ruleset.family, table: ruleset.table)
        return Dictionary(ruleset.tenants.map { ($0, all[Ruleset.isolationCounter($0)]?.packets ?? 0) }, uniquingKeysWith: { a, _ in a })
    }
}
