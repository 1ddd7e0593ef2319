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
