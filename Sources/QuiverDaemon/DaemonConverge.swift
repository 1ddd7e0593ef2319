import Foundation
import Logging
import QuiverFabric
import QuiverKernel
import QuiverTopology
import QuiverVM

/// Why the daemon applies a topology.
enum ConvergeKind: String {
    /// The daemon's start, or a SIGHUP that added or changed the record: a boot, not a repair —
    /// guests not running are started, and nothing counts as drift.
    case start, reload
    case repair, reconcile
    case guestRestart = "guest restart"

    var isBoot: Bool { self == .start || self == .reload }
    /// Someone may have applied or destroyed it by hand since the daemon's last apply.
    var checksHandMade: Bool { self == .repair || self == .reconcile }
}

/// Bringing one topology back to its record: apply, then prove it with an apply that changes nothing.
extension Daemon {
    /// Hosts whose stopped guest the apply must leave stopped: supervision decided so, or their
    /// restart is not due yet.
    func leaveStopped(_ m: Managed, now: Date) -> Set<String> {
        Set(m.vms.map(\.host).filter { h in
            guard let g = guests["\(m.topology.name)/\(h)"] else { return false }
            return g.state != "running" && !g.mayStart(now: now)
        })
    }

    /// Applies `m` until an apply changes nothing (at most three rounds), and says what it found
    /// and did. Another apply made by hand since the daemon's last one, that the record would
    /// undo, pauses repair instead: a conflict is logged, not fought.
    func converge(_ m: Managed, found: [String], since: Date, kind: ConvergeKind) {
        let name = m.topology.name
        let scope = m.status.key
        var meta: Logger.Metadata = ["topology": "\(scope)", "kind": "\(kind.rawValue)"]
        let begin = Date()
        // A guest found gone is decided on by its policy first: a repair must not restart
        // what supervision leaves stopped or has not restarted yet. (A boot starts guests not
        // running; a guest restart comes from supervision, which just looked.)
        if kind.checksHandMade { _ = checkGuests(m, now: begin) }
        do {
            if kind.checksHandMade, let reason = try handMade(m) {
                m.paused = true
                m.status.problem = reason
                log.warning("drift repair paused", metadata: meta.merging(["why": "\(reason)"]) { $1 })
                return
            }
            var did: [String] = []
            var converged = false
            // The second apply of a repair proves it: it finds nothing left to change.
            for _ in 0..<3 {
                let r = try m.fabric.apply(m.topology, leaveStopped: leaveStopped(m, now: Date()))
                // What the apply itself changed comes back as notifications: not drift.
                _ = watch.drain()
                pending[scope] = nil
                if r.isNoOp {
                    converged = true
                    break
                }
                did += r.plan.operations.map(\.description)
                noteRestarts(m, r.plan.operations)
            }
            m.applyID = try Journal.load(try TopologyName(validating: name), node: m.topology.node)?.applyID
            m.status.applied = converged
            m.status.problem = converged ? nil : "still differs from its record after three applies"
            let seconds = Date().timeIntervalSince(since)
            meta["ms"] = "\(Int(seconds * 1000))"
            if kind == .reconcile || kind.isBoot {
                m.status.reconciles += 1
                m.status.lastReconcile = Date()
                m.status.lastReconcileSeconds = Date().timeIntervalSince(begin)
            }
            if !did.isEmpty && !kind.isBoot {
                m.status.repairs += 1
                m.status.lastRepair = Date()
                m.status.lastRepairSeconds = seconds
                m.status.lastRepairFound = found
                m.status.lastRepairDid = Array(did.prefix(50))
                log.notice("repaired drift", metadata: meta.merging(["found": "\(found.joined(separator: "; "))",
                                                                      "did": "\(did.prefix(20).joined(separator: "; "))", "steps": "\(did.count)"]) { $1 })
            } else if kind.isBoot {
                log.info("applied", metadata: meta.merging(["steps": "\(did.count)"]) { $1 })
            } else {
                log.debug("nothing to repair", metadata: meta.merging(["found": "\(found.joined(separator: "; "))"]) { $1 })
            }
            if !converged { log.error("did not converge", metadata: meta) }
            m.failures = 0
            m.retryAt = nil
        } catch {
            // What the failed apply removed again comes back as notifications: not drift.
            _ = watch.drain()
            pending[scope] = nil
            m.failures += 1
            let delay = min(options.reconcileInterval, pow(2, Double(min(m.failures, 20) - 1)))
            m.retryAt = Date().addingTimeInterval(delay)
            m.status.applied = false
            m.status.problem = "\(kind.rawValue) failed: \(error)"
            log.error("apply failed; the next event or reconcile tries again", metadata: meta.merging(
                ["error": "\(error)", "failures": "\(m.failures)", "retry_after_s": "\(Int(delay))"]) { $1 })
        }
        if !kind.isBoot { noteFailedStarts(m) }
        updateWatch()
    }

    /// Why repair must not run: the topology was destroyed, or applied from another file, by
    /// hand since the daemon's last apply. Nil when the daemon may go on.
    private func handMade(_ m: Managed) throws -> String? {
        let journal = try Journal.load(try TopologyName(validating: m.topology.name), node: m.topology.node)
        guard m.applyID != nil else { return nil }
        guard let journal else {
            return "destroyed by hand while the daemon ran: left alone (`quiver disable \(m.topology.name)`, or SIGHUP to apply it again)"
        }
        guard journal.applyID != m.applyID else { return nil }
        // Applied by hand from the same text as the record: nothing to fight, the daemon goes on.
        // Any other text — a cap changed, a comment — is the operator's: repair pauses.
        if journal.source == m.topology.sourceDigest {
            m.applyID = journal.applyID
            return nil
        }
        return "applied by hand from a file that differs from its persistent record: repair paused (`quiver enable FILE` records it; then SIGHUP)"
    }

    /// `m`'s guests looked at: one found gone is decided on by its restart policy. True when
    /// one of them is due to be restarted.
    func checkGuests(_ m: Managed, now: Date) -> Bool {
        var due = false
        for vm in m.vms {
            let key = "\(m.topology.name)/\(vm.host)"
            guard var g = guests[key] else { continue }
            let alive = VMLauncher.record(directory: vm.directory).map(VMLauncher.isAlive) ?? false
            if alive {
                if g.state != "running" { g.state = "running"; g.reason = nil }
            } else if g.state == "running" {
                g.gone(GuestExit.of(directory: vm.directory), now: now, limits: options.restartLimits)
                var meta: Logger.Metadata = ["topology": "\(g.topology)", "host": "\(g.host)", "exit": "\(g.lastExit!.rawValue)", "state": "\(g.state)"]
                if let r = g.reason { meta["reason"] = "\(r)" }
                if let next = g.nextRestart { meta["restart_in_s"] = "\(String(format: "%.1f", next.timeIntervalSince(now)))" }
                log.notice("guest gone", metadata: meta)
            }
            if g.mayStart(now: now) { due = true }
            guests[key] = g
        }
        return due
    }

    /// Guests the apply started count as restarted (not at the daemon's start: that is boot).
    private func noteRestarts(_ m: Managed, _ ops: [QuiverFabric.Operation]) {
        for case .startVM(let host) in ops {
            let key = "\(m.topology.name)/\(host)"
            guard var g = guests[key] else { continue }
            if g.state == "waiting to restart" {
                g.restarted(now: Date())
                log.notice("guest restarted", metadata: ["topology": "\(m.topology.name)", "host": "\(host)", "restarts": "\(g.restarts)"])
            } else {
                g.state = "running"
            }
            guests[key] = g
        }
    }

    /// Each guest's qemu checked: one found gone is decided on by its restart policy; one whose
    /// restart is due gets it through an apply of its topology.
    func superviseGuests() {
        let now = Date()
        let due = managed.values.filter { checkGuests($0, now: now) }.map(\.status.key)
        for key in due.sorted() {
            guard let m = managed[key], !m.paused else { continue }
            converge(m, found: ["guest restart due"], since: now, kind: .guestRestart)
        }
    }

    /// A guest still waiting after the apply meant to restart it did not get going: the attempt
    /// counts against its limit like a restart that died at once, so a guest that can never start
    /// is given up on instead of tried on every turn.
    private func noteFailedStarts(_ m: Managed) {
        let now = Date()
        for vm in m.vms {
            let key = "\(m.topology.name)/\(vm.host)"
            guard var g = guests[key], g.mayStart(now: now) else { continue }
            g.startFailed(now: now, limits: options.restartLimits)
            var meta: Logger.Metadata = ["topology": "\(g.topology)", "host": "\(g.host)", "state": "\(g.state)"]
            if let r = g.reason { meta["reason"] = "\(r)" }
            log.error("guest restart failed", metadata: meta)
            guests[key] = g
        }
    }
}
