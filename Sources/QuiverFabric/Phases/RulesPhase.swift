import Foundation
import QuiverProtection
import QuiverTopology

/// Phases `rules` and `rulesAfterVNICs`: the isolation and protection table, in one
/// transaction, on a thread of its own beside the phases that follow (nftables commits under its
/// own lock, not RTNL, so it overlaps the namespaces' or the caps' work); ``ApplyRun/joinRules()``
/// waits for it before the first phase that ``PhaseKind/waitsForRules``.
extension ApplyRun {
    /// Starts the phase's thread; its result is the steps that changed the kernel (to count).
    func startRules(_ phase: Phase) throws {
        rules = (phase, Background(try rulesWork(phase.steps)), Date())
    }

    /// What the rules' steps do, worked out here (the MACs the kernel picked, the table) and
    /// run wherever the caller likes: it touches nothing of this run.
    private func rulesWork(_ steps: [Operation]) throws -> @Sendable () throws -> [Operation] {
        var install: (Operation, Ruleset)?
        var remove: Operation?
        for o in steps {
            switch o {
            case .installProtection:
                guard let r = desired.ruleset(macs: try randomMACs()) else { continue }
                if case .absent = current.firewall { undo.rulesMade = true }
                install = (o, r)
            case .removeProtection:
                remove = o
            default:
                continue
            }
        }
        let names = KernelNames(topology)
        return { [firewall = fabric.firewall, install, remove] in
            var changed: [Operation] = []
            if let (o, r) = install, try firewall.install(r) { changed.append(o) }
            if let o = remove, try firewall.remove(table: names.firewallTable, ownerTag: names.tagPrefix) { changed.append(o) }
            return changed
        }
    }
}
