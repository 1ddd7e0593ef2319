import QuiverKernel

/// The phases of an apply, in the order they run. Each has one executor (`Phases/*Phase.swift`),
/// which sends the phase's steps to the kernel in as few batches as the kernel allows.
public enum PhaseKind: String, Sendable, CaseIterable, Codable {
    case stopGuests = "stop guests"
    case removeCaps = "remove caps"
    case deleteLinks = "delete links"
    case deleteNamespaces = "delete namespaces"
    case tagLinks = "tag links"
    /// The isolation and protection table, when every MAC it names is known before anything is
    /// made (the file fixes each, or the kernel picked it in an earlier apply).
    case rules
    case namespaces
    case switches = "switches and IFBs"
    /// VXLAN segments of switches that span nodes, and their static forwarding entries.
    case segments = "segments and forwarding entries"
    case moveVNICs = "move VNICs"
    case createVNICs = "create VNICs"
    case guestNICs = "guest NICs"
    case hosts = "host addresses and routes"
    /// The table, when it names the MAC the kernel picks for a `mac: random` VNIC this apply
    /// makes: once the VNICs are made.
    case rulesAfterVNICs = "rules, once new VNICs have their MACs"
    case caps
    case guests
    case portsUp = "ports up"
    /// DHCP servers, once their ports are up.
    case dhcp = "DHCP servers"

    /// How the phase shares time with others, said with it wherever phases are printed.
    public var concurrency: String? {
        switch self {
        case .stopGuests: return "all guests (and DHCP servers) at once"
        case .namespaces: return "on a thread of its own beside switches, moves, VNICs and guest NICs; a VNIC waits only for its own namespace"
        case .rules: return "on a thread of its own beside the namespaces and switches; in before any VNIC is made or moved"
        case .rulesAfterVNICs: return "on a thread of its own beside the caps; in before the guests start"
        case .hosts: return "one batch per host"
        case .segments: return "one batch"
        default: return nil
        }
    }

    /// The phase runs on a thread of its own, beside the phases after it, until one of those
    /// that ``waitsForRules`` (the same two threads would compete for the CPUs with the VNICs'
    /// kernel work; BENCHMARKS.md).
    var runsInBackground: Bool { self == .rules || self == .rulesAfterVNICs }

    /// The rules are in before the phase starts.
    var waitsForRules: Bool { [.moveVNICs, .createVNICs, .guests, .portsUp].contains(self) }

    /// The phase works in the hosts, so it waits for every namespace the apply makes (the
    /// namespaces, switches, segments, moves, VNICs and guest NICs run while they are made; so do
    /// the rules when every MAC is known from the start).
    var needsEveryHost: Bool { ![.rules, .namespaces, .switches, .segments, .moveVNICs, .createVNICs, .guestNICs].contains(self) }
}

/// One phase of a plan: its steps, in the order they are sent.
public struct Phase: Sendable, Equatable {
    public var kind: PhaseKind
    public var steps: [Operation]

    public init(kind: PhaseKind, steps: [Operation]) {
        self.kind = kind
        self.steps = steps
    }
}

/// A plan: the phases an apply runs, in order, each with its steps — exactly what `apply` does
/// and what `--dry-run`, `-v` and `-o json` print — or the conflicts that forbid applying.
public struct Plan: Sendable, Equatable {
    public var phases: [Phase]
    public var conflicts: [Conflict]

    /// Groups `steps` into their phases (`phase`: each step's own unless the planner places it
    /// otherwise; empty phases left out), each phase's steps by rank and then in the order given.
    public init(steps: [Operation], conflicts: [Conflict], phase: (Operation) -> PhaseKind = \.phase) {
        // One pass into (phase, rank) buckets keeps the given order within each.
        let kinds = PhaseKind.allCases
        let position = Dictionary(uniqueKeysWithValues: kinds.enumerated().map { ($1, $0) })
        var buckets = [[Int: [Operation]]](repeating: [:], count: kinds.count)
        for step in steps {
            guard let p = position[phase(step)] else { continue }
            buckets[p][step.rank, default: []].append(step)
        }
        phases = zip(kinds, buckets).compactMap { kind, byRank in
            byRank.isEmpty ? nil : Phase(kind: kind, steps: byRank.keys.sorted().flatMap { byRank[$0] ?? [] })
        }
        self.conflicts = conflicts
    }

    /// Every step, in the order they run.
    public var operations: [Operation] { phases.flatMap(\.steps) }
    /// How many steps, without copying them (`operations.count` copies every step first).
    public var stepCount: Int { phases.reduce(0) { $0 + $1.steps.count } }
    public var isEmpty: Bool { phases.isEmpty }

    public func steps(_ kind: PhaseKind) -> [Operation] { phases.first { $0.kind == kind }?.steps ?? [] }
}
