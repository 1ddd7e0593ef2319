import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverTopology
import QuiverVM
import SystemPackage

extension Fabric {
    /// Validates nothing (the topology is already valid), plans, and runs the plan's phases in
    /// order. `progress` is called with (done, total) as steps complete.
    ///
    /// Conflicts stop it before anything changes (``ConflictList``). An apply that fails once it
    /// has begun to change things removes what that same run created — guests it started, links
    /// and namespaces it made, the rules where there were none — and throws ``ApplyFailure``,
    /// which says what it removed and what stays. What stays (changes to objects that were there
    /// before, or anything the undo could not remove) is tagged or journaled, so the next apply
    /// or destroy converges from it.
    ///
    /// `leaveStopped`: hosts whose guest, found stopped, stays stopped (the daemon's restart
    /// policies); any other stopped guest is started again.
    public func apply(_ t: Topology, dryRun: Bool = false, leaveStopped: Set<String> = [], progress: ((Int, Int) -> Void)? = nil) throws -> ApplyResult {
        let name = try TopologyName(validating: t.name)
        let lock = try TopologyLock(name)
        defer { withExtendedLifetime(lock) {} }
        let undo = ApplyUndo()
        do {
            let r = try applyLocked(t, dryRun: dryRun, leaveStopped: leaveStopped, undo: undo, progress: progress)
            if dryRun && lock.created { lock.removeFile() }
            return r
        } catch {
            guard undo.executing else {
                // Refused before any change: not even a lock file stays behind.
                if lock.created { lock.removeFile() }
                throw error
            }
            throw rollBack(undo, after: error, topology: name, node: t.node, lock: lock)
        }
    }

    /// `apply` with the topology's lock held: plan, refuse what must be refused, then each phase
    /// in turn — one that runs in the background (``PhaseKind/runsInBackground``) on a thread of
    /// its own until a later phase needs it done. What it makes is recorded in `undo` as it goes.
    func applyLocked(_ t: Topology, dryRun: Bool, leaveStopped: Set<String> = [], undo: ApplyUndo, progress: ((Int, Int) -> Void)?) throws -> ApplyResult {
        let start = Date()
        // When every fabric link is already there (a re-apply), the caps' state (every qdisc, each
        // IFB's classes and filters) is read on a thread of its own while the hosts are read; if
        // the plan then changes no fabric link, the caps phase compares against it instead of
        // dumping it all again.
        var desiredHere = try desired(t)
        for i in desiredHere.vms.indices where leaveStopped.contains(desiredHere.vms[i].host) { desiredHere.vms[i].startIfStopped = false }
        let wanted = desiredHere
        var capsRead: Background<ShapingState>?
        let planning = try planning(t, desired: wanted) { [handle] links in
            guard !dryRun, !wanted.capGroups.isEmpty else { return }
            let names = Set(links.map(\.name))
            guard wanted.fabricLinkNames.allSatisfy({ names.contains($0.rawValue) }) else { return }
            capsRead = Background { try Shaper(handle: handle).read(wanted.capGroups, links: links) }
        }
        defer { _ = capsRead?.wait() }
        let planned = Date().timeIntervalSince(start) * 1000
        let plan = planning.plan
        guard plan.conflicts.isEmpty else { throw ConflictList(conflicts: plan.conflicts) }
        // Host links under macvtaps are the operator's: they must be there before anything changes.
        let missing = planning.desired.vms.flatMap { vm in
            vm.taps.filter { d in !d.overSwitch && !planning.current.links.contains { $0.name == d.bridge.rawValue } }.map { (vm.host, $0) }
        }
        if let (host, d) = missing.first {
            throw MissingLowerLink(host: host, link: d.bridge.rawValue, fabric: fabricNamespace.map { "network namespace \($0.name ?? "\($0)")" } ?? "host namespace")
        }
        // Guests get ids no user or group of the host has: a range that collides is refused here.
        if plan.phases.contains(where: { $0.kind == .guests && !$0.steps.isEmpty }) { _ = try GuestIdentity.range() }
        if dryRun { return ApplyResult(plan: plan) }
        undo.executing = true

        let run = try ApplyRun(fabric: self, topology: t, planning: planning, undo: undo, capsRead: capsRead, progress: progress)
        defer { run.joinBackground() }
        run.result.phases.append(("read kernel state and plan", planned))
        try run.record()
        for phase in plan.phases { try run.run(phase) }
        try run.finish()
        run.result.milliseconds = Date().timeIntervalSince(start) * 1000
        return run.result
    }
}
