/// An object in the kernel with a name the topology wants, that the topology does not own.
public struct Conflict: Error, Sendable, Equatable, CustomStringConvertible {
    public var object: String
    public var found: String
    public var description: String {
        "\(object) already exists and was not created by Quiver for this topology (\(found)); it is left alone — remove or rename it, or rename the topology"
    }
}

/// Conflicts found while planning: nothing was changed.
public struct ConflictList: Error, Sendable, CustomStringConvertible {
    public var conflicts: [Conflict]
    public var description: String { conflicts.map(\.description).joined(separator: "\n") }
}
