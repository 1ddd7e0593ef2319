import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverTopology
import QuiverVM

extension Fabric {
    /// Removes what `undo` says the failed apply made — guests first (their taps go with them),
    /// then links (a VNIC's port takes its endpoint along), namespaces and rules — and brings the
    /// journal in line. Returns the ``ApplyFailure`` to throw.
    func rollBack(_ undo: ApplyUndo, after error: Error, topology: TopologyName, node: String? = nil, lock: TopologyLock) -> ApplyFailure {
        var failure = ApplyFailure(topology: topology.rawValue, error: error, undone: [])
        func attempt(_ body: () throws -> Void) {
            do { try body() } catch { failure.undoError = failure.undoError ?? error }
        }
        func count(_ n: Int, _ one: String, _ many: String) { if n > 0 { failure.undone.append("\(n) \(n == 1 ? one : many)") } }
        let names = KernelNames(topology.rawValue, node: node)

        var guests = 0
        for d in undo.guests {
            attempt {
                try VMLauncher.stop(directory: d, powerdownTimeout: 0, guestShutdownTimeout: 0)
                try GuestDirectory.remove(d)
                guests += 1
            }
        }
        count(guests, "guest", "guests")
        var servers = 0
        for (d, ns) in undo.dhcp { attempt { if try DHCPServer.stop(directory: d, namespace: ns) { servers += 1 } } }
        count(servers, "DHCP server", "DHCP servers")
        for d in undo.preparedGuests where !undo.guests.contains(d) { attempt { try GuestDirectory.remove(d) } }
        attempt { _ = try GuestDirectory.removeTopology(topology) }

        var removedLinks: [String] = []
        attempt {
            let made = Set(undo.links)
            let links = try handle.links(statistics: false).filter { made.contains($0.name) && names.owns($0, pending: made) }
            let macvtaps = links.filter { if case .macvtap? = $0.data { return true } else { return false } }
            let bridges = Set(try handle.links(statistics: false).filter { if case .bridge? = $0.data { return true } else { return false } }.map(\.index))
            try deleteMacvtaps(macvtaps, bridges: bridges)
            let rest = links.filter { l in !macvtaps.contains { $0.name == l.name } }
            try handle.perform(try rest.map { LinkRequest.delete(try InterfaceName(validating: $0.name)) })
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
            if var journal = try Journal.load(topology, node: node) {
                journal.pendingLinks = journal.pendingLinks.filter { !removedLinks.contains($0) }
                journal.pendingNamespaces = journal.pendingNamespaces.filter { !removedNamespaces.contains($0) }
                if !undo.hadRecord && failure.undoError == nil && journal.pendingLinks.isEmpty && journal.pendingNamespaces.isEmpty {
                    try Journal.remove(topology, node: node)
                } else {
                    try journal.save()
                }
            }
            if lock.created, try Journal.load(topology, node: node) == nil { lock.removeFile() }
        }
        return failure
    }
}
