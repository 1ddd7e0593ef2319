import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverTopology
import SystemPackage

/// One apply in progress: what the phases share — the plan and what it was made from, a socket
/// in every host, the journal, what has been made so far (for the undo), and the result.
final class ApplyRun {
    let fabric: Fabric
    let topology: Topology
    let plan: Plan
    let desired: DesiredFabric
    let current: CurrentFabric
    let undo: ApplyUndo
    let capsRead: Background<ShapingState>?
    /// A socket in each host namespace, by name (those this apply makes are added once open).
    var handles: [String: NetlinkHandle]
    var journal: Journal
    var result: ApplyResult
    /// Namespaces being made beside the phases that follow them.
    var namespaces: NamespacePipeline?
    /// The rules being installed beside the phases that follow them.
    var rules: (phase: Phase, thread: Background<[Operation]>, started: Date)?
    /// Interface indexes of the fabric's links after the switches are made (VNICs, guests).
    var linkIndexes: [String: Int32]?
    /// Interface indexes of links this apply made in hosts, by host.
    var hostIndexes: [String: [String: Int32]] = [:]
    /// The MACs the kernel picked for `mac: random` VNICs (caps and rules need them).
    var pickedMACs: [InterfaceName: MACAddress]?
    /// Each guest's NIC queues, by host, from its NICs' phase to its qemu's.
    var guestQueues: [String: [[FileDescriptor]]] = [:]
    private let progress: ((Int, Int) -> Void)?
    private var done = 0

    init(fabric: Fabric, topology: Topology, planning: Fabric.Planning, undo: ApplyUndo, capsRead: Background<ShapingState>?,
         progress: ((Int, Int) -> Void)?) throws {
        self.fabric = fabric
        self.topology = topology
        plan = planning.plan
        desired = planning.desired
        current = planning.current
        handles = planning.handles
        self.undo = undo
        self.capsRead = capsRead
        self.progress = progress
        result = ApplyResult(plan: planning.plan)
        let name = try TopologyName(validating: topology.name)
        let record = try Journal.load(name, node: topology.node)
        undo.hadRecord = record != nil
        journal = record ?? Journal(topology: name, node: topology.node)
        journal.file = URL(fileURLWithPath: topology.file).standardizedFileURL.path
        journal.source = topology.sourceDigest.isEmpty ? nil : topology.sourceDigest
        if topology.node != nil {
            journal.guests = planning.desired.vms.map(\.host)
            journal.fabricNamespace = fabric.fabricNamespace?.name
        }
    }

    var handle: NetlinkHandle { fabric.handle }

    /// Counts a step by its verb, and reports progress.
    func count(_ o: Operation) {
        switch o.verb {
        case .create?: result.created += 1
        case .change?: result.changed += 1
        case .delete?: result.deleted += 1
        case nil: break
        }
    }

    func tick(_ n: Int) {
        done += n
        // The total without copying every step: a tick per namespace made this quadratic
        // (250 namespaces × 3,500 steps copied in a node's apply of bench/multihost).
        progress?(done, plan.stepCount)
    }

    /// The journal, before anything is made: every namespace and fabric link this apply is about
    /// to make, so that one left untagged by a crash is still provably the topology's.
    func record() throws {
        let ops = plan.operations
        let newNamespaces = ops.compactMap { if case .createNamespace(let n) = $0 { return n.rawValue } else { return nil } }
        let startingVMs = Set(ops.compactMap { if case .startVM(let h) = $0 { return h } else { return nil } })
        let newLinks = (ops.compactMap { o -> InterfaceName? in
            switch o {
            case .createBridge(let b): return b.name
            case .createIFB(let i): return i
            case .createVNIC(let v): return v.hostDevice
            case .createSegment(let g): return g.device
            default: return nil
            }
        } + desired.vms.filter { startingVMs.contains($0.host) }.flatMap { $0.taps.filter(\.macvtap).map(\.name) }).map(\.rawValue)
        undo.links = newLinks
        undo.namespaces = newNamespaces
        guard !newNamespaces.isEmpty || !newLinks.isEmpty else { return }
        journal.pendingNamespaces = Array(Set(journal.pendingNamespaces).union(newNamespaces)).sorted()
        journal.pendingLinks = Array(Set(journal.pendingLinks).union(newLinks)).sorted()
        try journal.save()
    }

    /// Runs one phase on this thread and notes its time. Its steps all count as done once it
    /// is (an executor may report some as it goes); the new namespaces' once they are joined.
    func run(_ phase: Phase) throws {
        if phase.kind.needsEveryHost { try joinNamespaces() }
        if phase.kind.waitsForRules { try joinRules() }
        let start = Date()
        let before = done
        result.executed.append(phase.kind)
        try execute(phase)
        // A phase in the background is counted and timed when it is joined.
        guard !phase.kind.runsInBackground else { return }
        if phase.kind != .namespaces { tick(phase.steps.count - (done - before)) }
        result.phases.append((phase.kind.rawValue, Date().timeIntervalSince(start) * 1000))
    }

    /// The rules' thread, once: its steps counted, its error thrown.
    func joinRules() throws {
        guard let (phase, thread, start) = rules else { return }
        rules = nil
        let waited = Date()
        let outcome = thread.wait()
        result.phases.append(("\(phase.kind.rawValue) (on its thread; waited \(Int(Date().timeIntervalSince(waited) * 1000)) ms for it)",
                              Date().timeIntervalSince(start) * 1000))
        for step in try outcome.get() { count(step) }
        tick(phase.steps.count)
    }

    func execute(_ phase: Phase) throws {
        switch phase.kind {
        case .stopGuests: try stopGuests(phase.steps)
        case .removeCaps: try removeCaps(phase.steps)
        case .deleteLinks: try deleteLinks(phase.steps)
        case .deleteNamespaces: try deleteNamespaces(phase.steps)
        case .tagLinks: try tagLinks(phase.steps)
        case .namespaces: try startNamespaces(phase.steps)
        case .switches: try createSwitches(phase.steps)
        case .segments: try buildSegments(phase.steps)
        case .moveVNICs: try moveVNICs(phase.steps)
        case .createVNICs: try createVNICs(phase.steps)
        case .guestNICs: try createGuestNICs(phase.steps)
        case .guests: try startGuests(phase.steps)
        case .hosts: try configureHosts(phase.steps)
        case .caps: try applyCaps(phase.steps)
        case .rules, .rulesAfterVNICs: try startRules(phase)
        case .portsUp: try bringPortsUp(phase.steps)
        case .dhcp: try startDHCPServers(phase.steps)
        }
    }

    /// The namespaces made beside the switches and VNICs, and their sockets (once).
    func joinNamespaces() throws {
        guard let p = namespaces else { return }
        namespaces = nil
        let start = Date()
        for (n, h) in try p.finish() { handles[n] = h }
        result.created += p.names.count
        tick(p.names.count)
        result.phases.append(("namespaces: waiting for the rest", Date().timeIntervalSince(start) * 1000))
    }

    /// Never leave a background thread running, nor a descriptor open, behind an error.
    func joinBackground() {
        _ = try? namespaces?.finish()
        namespaces = nil
        _ = rules?.thread.wait()
        rules = nil
        closeGuestQueues()
    }

    /// The apply is done: the journal names nothing pending any more.
    func finish() throws {
        try joinNamespaces()
        try joinRules()
        journal.pendingNamespaces = []
        journal.pendingLinks = []
        journal.appliedAt = Date()
        journal.applyID = UUID().uuidString
        try journal.save()
    }

    /// The fabric's links by name, read once after the switches are made (or as planning found
    /// them, when the apply made none).
    func indexes() throws -> [String: Int32] {
        if let i = linkIndexes { return i }
        let links = result.executed.contains(.switches) ? try handle.links(statistics: false) : current.links
        let i = Dictionary(links.map { ($0.name, $0.index) }, uniquingKeysWith: { a, _ in a })
        linkIndexes = i
        return i
    }

    /// The socket in host namespace `name` (open since planning, or since this apply made it).
    func host(_ name: String) throws -> NetlinkHandle {
        guard let h = handles[name] else {
            throw NetlinkError(context: RequestContext("configure", "netns \(name)"), errno: .noSuchFileOrDirectory,
                               hint: "network namespace \(name) is gone")
        }
        return h
    }

    /// A device the phase needs is not there.
    func missing(_ operation: String, _ object: String, _ hint: String) -> NetlinkError {
        NetlinkError(context: RequestContext(operation, object), errno: .noSuchDevice, hint: hint)
    }
}
