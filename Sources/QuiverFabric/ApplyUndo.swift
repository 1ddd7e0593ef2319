import Foundation

/// What one apply has made so far, so that a failure can remove it again.
final class ApplyUndo: @unchecked Sendable {
    private let lock = NSLock()
    /// Set once the apply begins to change the host (after planning, conflicts and dry runs).
    var executing = false
    /// Fabric links the apply creates (journaled as pending before it makes them).
    var links: [String] = []
    /// Run directories of guests it starts.
    var guests: [String] = []
    /// Run directories it prepared for guests' NICs (a guest that never started has only that).
    var preparedGuests: [String] = []
    /// DHCP servers it starts: (run directory, namespace).
    var dhcp: [(String, String)] = []
    /// It installs the rules where the topology had none.
    var rulesMade = false
    /// The topology had a record before this apply.
    var hadRecord = false
    /// The namespaces it makes, in order; the first `made` of them exist.
    var namespaces: [String] = []
    private var made = 0

    /// How many of `namespaces` are made so far (called from the thread making them).
    func madeNamespaces(_ n: Int) {
        lock.lock()
        made = n
        lock.unlock()
    }

    var madeNamespaces: [String] {
        lock.lock()
        defer { lock.unlock() }
        return Array(namespaces.prefix(made))
    }
}
