import Foundation

/// What an apply or destroy did.
public struct ApplyResult: @unchecked Sendable {
    public var plan: Plan
    public var created = 0
    public var changed = 0
    public var deleted = 0
    public var milliseconds = 0.0
    /// Where the time went: (phase, milliseconds), in the order the phases ran.
    public var phases: [(String, Double)] = []
    /// The phases as they ran, in order (a dry run: none).
    public var executed: [PhaseKind] = []
    /// What the user should know about what happened (a guest's overlay made anew, …).
    public var notes: [String] = []
    public var isNoOp: Bool { created == 0 && changed == 0 && deleted == 0 }

    public var summary: String {
        isNoOp ? String(format: "no changes (%.0f ms)", milliseconds)
            : String(format: "created %d, changed %d, deleted %d in %.0f ms", created, changed, deleted, milliseconds)
    }
}
