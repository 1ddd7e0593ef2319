import QuiverKernel

/// The phases of an apply, in the order they run. Each has one executor (`Phases/*Phase.swift`),
/// which sends the phase's steps to the kernel in as few batches as the kernel allows.
public enum PhaseKind: String, Sendable, CaseIterable, Codable {
    case stopGuests = "stop guests"
    case removeCaps = "remove caps"
    case deleteLinks = "delete links"
    case deleteNamespaces = "delete namespaces"
    case tagLinks = "tag links"
    case namespaces
    case switches = "switches and IFBs"
    case moveVNICs = "move VNICs"
    case createVNICs = "create VNICs"
    case guestNICs = "guest NICs"
    case hosts = "host addresses and routes"
    case caps
    case rules
    case guests
    case portsUp = "ports up"

    /// How the phase shares time with others, said with it wherever phases are printed.
    public var concurrency: String? {
        switch self {
        case .stopGuests: return "all guests at once"
        case .namespaces: return "on a thread of its own beside switches, moves, VNICs and guest NICs; a VNIC waits only for its own namespace"
        case .rules: return "beside caps, on a thread of its own"
        case .hosts: return "one batch per host"
        default: return nil
        }
    }

    /// The phase that runs at the same time as this one (this one is started with it).
    var runsBeside: PhaseKind? { self == .rules ? .caps : nil }

    /// The phase works in the hosts, so it waits for every namespace the apply makes (the
    /// namespaces, switches, moves, VNICs and guest NICs run while they are made).
    var needsEveryHost: Bool { ![.namespaces, .switches, .moveVNICs, .createVNICs, .guestNICs].contains(self) }
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
        phases = PhaseKind.allCases.compactMap { kind in
            let mine = steps.enumerated().filter { phase($0.element) == kind }
                .sorted { ($0.element.rank, $0.offset) < ($1.element.rank, $1.offset) }.map(\.element)
            return mine.isEmpty ? nil : Phase(kind: kind, steps: mine)
        }
        self.conflicts = conflicts
    }

    /// Every step, in the order they run.
    public var operations: [Operation] { phases.flatMap(\.steps) }
    public var isEmpty: Bool { phases.isEmpty }

    public func steps(_ kind: PhaseKind) -> [Operation] { phases.first { $0.kind == kind }?.steps ?? [] }
}
