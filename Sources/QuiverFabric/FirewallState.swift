import QuiverProtection

/// The topology's nftables tables as found in the fabric namespace.
package enum FirewallState: Sendable, Equatable {
    case absent
    /// Quiver's: its comment (owner tag and fingerprint) and how many chains/sets/counters the
    /// tables hold together. A netdev table whose comment differs from the bridge table's (or one
    /// without a bridge table) reads as comment "", which no ruleset has.
    case installed(comment: String, use: UInt32)
    /// A table of that name Quiver did not make.
    case foreign(family: String, comment: String?)

    static func read(_ firewall: Firewall, table: String, ownerTag: String) throws -> FirewallState {
        do {
            let t = try firewall.tables(table, ownerTag: ownerTag)
            if t.bridge == nil && t.netdev == nil && t.inet == nil { return .absent }
            var comment = t.bridge?.comment ?? ""
            if let n = t.netdev, n.comment != t.bridge?.comment { comment = "" }
            if let n = t.inet, n.comment != t.bridge?.comment { comment = "" }
            return .installed(comment: comment, use: (t.bridge?.use ?? 0) + (t.netdev?.use ?? 0) + (t.inet?.use ?? 0))
        } catch let e as ForeignTableError {
            return .foreign(family: e.family.name, comment: e.comment)
        }
    }
}
