import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverTopology
import QuiverVM

/// What one apply has made so far, so that a failure can remove it again.
final class ApplyUndo: @unchecked Sendable {
    private let lock = NSLock()
    /// Set once the apply begins to change the host (after planning, conflicts and dry runs).
    var executing = false
    /// Fabric links the apply creates (journaled as pending before it makes them).
    var links: [String] = []
    /// Run directories of guests it starts.
    var guests: [String] = []
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

/// An apply that failed after it began to change the host: the error, what the apply then
/// removed of what it had made, and what was left.
public struct ApplyFailure: Error, CustomStringConvertible {
    public var topology: String
    public var error: Error
    /// What was removed again, e.g. `["2 namespaces", "5 links", "the rules"]`.
    public var undone: [String]
    /// Why some of it could not be removed; nil when all of it was.
    public var undoError: Error?

    public var description: String {
        let head = "\(error)\n"
        if let undoError {
            return head + "apply of \(topology) stopped, and removing what it had made failed too (\(undoError)); every object it made "
                + "carries \(topology)'s tag or is named in its journal, so `quiver apply` of the file again converges and "
                + "`quiver destroy \(topology)` removes it all"
        }
        let what = undone.isEmpty ? "it had made nothing new" : "it removed what it had made (" + undone.joined(separator: ", ") + ")"
        return head + "apply of \(topology) stopped; \(what). What it changed in objects that were there before stays as it is now: "
            + "`quiver apply` of the file again converges, `quiver destroy \(topology)` removes it all"
    }
}

extension Fabric {
    /// Removes what `undo` says the failed apply made — guests first (their taps go with them),
    /// then links (a VNIC's port takes its endpoint along), namespaces and rules — and brings the
    /// journal in line. Returns the ``ApplyFailure`` to throw.
    func rollBack(_ undo: ApplyUndo, after error: Error, topology: TopologyName, lock: TopologyLock) -> ApplyFailure {
        var failure = ApplyFailure(topology: topology.rawValue, error: error, undone: [])
        func attempt(_ body: () throws -> Void) {
            do { try body() } catch { failure.undoError = failure.undoError ?? error }
        }
        func count(_ n: Int, _ one: String, _ many: String) { if n > 0 { failure.undone.append("\(n) \(n == 1 ? one : many)") } }
        let names = KernelNames(topology.rawValue)

        var guests = 0
        for d in undo.guests {
            attempt {
                try VMLauncher.stop(directory: d, powerdownTimeout: 0)
                try GuestDirectory.remove(d)
                guests += 1
            }
        }
        count(guests, "guest", "guests")
        attempt { _ = try GuestDirectory.removeTopology(topology.rawValue) }

        var removedLinks: [String] = []
        attempt {
            let made = Set(undo.links)
            let links = try handle.links(statistics: false).filter { made.contains($0.name) && names.owns($0, pending: made) }
            let macvtaps = links.filter { if case .macvtap? = $0.data { return true } else { return false } }
            let bridges = Set(try handle.links(statistics: false).filter { if case .bridge? = $0.data { return true } else { return false } }.map(\.index))
            try deleteMacvtaps(macvtaps, bridges: bridges)
            let rest = links.filter { l in !macvtaps.contains { $0.name == l.name } }
            try handle.performLinks(try rest.map { LinkRequest.delete(try InterfaceName(validating: $0.name)) })
            removedLinks = links.map(\.name)
        }
        count(removedLinks.count, "link", "links")

        var removedNamespaces: [String] = []
        for n in undo.madeNamespaces {
            attempt {
                try NetworkNamespace.delete(named: n)
                removedNamespaces.append(n)
            }
        }
        count(removedNamespaces.count, "namespace", "namespaces")

        if undo.rulesMade {
            attempt { if try firewall.remove(table: names.firewallTable, ownerTag: names.tagPrefix) { failure.undone.append("the rules") } }
        }

        // The journal keeps naming whatever is still there; a topology that had no record before
        // and has nothing left gets none (nor a lock file, if this apply made it).
        attempt {
            if var journal = try Journal.load(topology) {
                journal.pendingLinks = journal.pendingLinks.filter { !removedLinks.contains($0) }
                journal.pendingNamespaces = journal.pendingNamespaces.filter { !removedNamespaces.contains($0) }
                if !undo.hadRecord && failure.undoError == nil && journal.pendingLinks.isEmpty && journal.pendingNamespaces.isEmpty {
                    try Journal.remove(topology)
                } else {
                    try journal.save()
                }
            }
            if lock.created, try Journal.load(topology) == nil { lock.removeFile() }
        }
        return failure
    }
}
