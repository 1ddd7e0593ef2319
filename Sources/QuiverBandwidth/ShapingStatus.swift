import QuiverKernel
import QuiverNetlink

/// One shaping class as configured and as counted, for `quiver cap show` and `quiver stats`.
public struct ClassUsage: Sendable, Equatable, Codable {
    /// "aggregate", "default", a member name, or "member/flow".
    public var label: String
    public var direction: Direction
    public var classID: String
    public var rate: Bitrate
    public var ceil: Bitrate
    public var burst: UInt32
    public var queueLimit: UInt32?
    public var statistics: TCStatistics
}

extension Shaper {
    /// What the kernel has for `group`, class by class, labelled from the plan.
    public func status(_ group: CapGroup) throws -> [ClassUsage] {
        var out: [ClassUsage] = []
        for d in Direction.allCases {
            guard let ifb = try handle.linkIfPresent(named: group.ifb(d)) else { continue }
            let layout = ShapingPlan.layout(group, d, policy: policy)
            let labels = Dictionary(uniqueKeysWithValues: layout.classes.map { ($0.id, $0.label) })
            let leaves = try handle.qdiscs(ifindex: ifb.index)
            for c in try handle.classes(ifindex: ifb.index).sorted(by: { $0.handle < $1.handle }) {
                guard let h = c.htb, c.handle.major == layout.root.major else { continue }
                var limit: UInt32?
                switch leaves.first(where: { $0.parent == c.handle })?.kind {
                case .bfifo(let l)?: limit = l
                case .tbf(let t)?: limit = t.limit
                default: break
                }
                out.append(ClassUsage(label: labels[c.handle] ?? "unplanned", direction: d, classID: c.handle.description,
                                      rate: h.rate, ceil: h.ceil, burst: h.burst, queueLimit: limit, statistics: c.statistics))
            }
        }
        return out
    }
}
