/// A macvtap's `over:` names a host link that does not exist: nothing was changed.
public struct MissingLowerLink: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var link: String
    public var fabric: String
    public var description: String {
        "vm host \(host): lower link \(link) of its macvtap does not exist in the \(fabric); nothing was changed — "
            + "create the link (Quiver never makes or changes a host link) or name a switch in `over:`"
    }
}
