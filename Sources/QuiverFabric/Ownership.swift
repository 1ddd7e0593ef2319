import QuiverKernel
import QuiverTopology

/// What in the kernel is a topology's: decided by its full tag, never by a hash alone.
extension KernelNames {
    /// True when a namespace's links show it is one of this topology's hosts (`lo` carries the tag).
    public func isOwnHost(links: [Link]) -> Bool {
        links.first { $0.name == "lo" }?.alias?.hasPrefix(tagPrefix + "host/") == true
    }

    /// Whether a fabric link is this topology's: in its link group *and* tagged with its tag
    /// prefix — or, untagged, named by the journal as one an interrupted apply was creating
    /// (the kernel takes no alias with a create, so a link exists untagged for a moment). The
    /// group alone never decides: other names hash to it too.
    public func owns(_ l: Link, pending: Set<String> = []) -> Bool {
        guard l.group == group else { return false }
        if let tag = l.alias, !tag.isEmpty { return tag.hasPrefix(tagPrefix) }
        return pending.contains(l.name)
    }
}
