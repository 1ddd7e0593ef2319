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
    /// What the kernel has for `group`, class by class, labelled from the plan. `qdiscs`: one
    /// dump of the namespace's qdiscs for all groups (the kernel's qdisc dump cannot be narrowed
    /// to one device, so a dump per IFB reads every device's qdiscs each time).
    public func status(_ group: CapGroup, qdiscs: [Qdisc]? = nil) throws -> [ClassUsage] {
        var out: [ClassUsage] = []
        for d in Direction.allCases {
            guard let ifb = try handle.linkIfPresent(named: group.ifb(d)) else { continue }
            let layout = ShapingPlan.layout(group, d, policy: policy)
            let labels = Dictionary(uniqueKeysWithValues: layout.classes.map { ($0.id, $0.label) })
            let leaves = try qdiscs.map { $0.filter { $0.ifindex == ifb.index } } ?? handle.qdiscs(ifindex: ifb.index)
            let leafByParent = Dictionary(leaves.map { ($0.parent, $0) }, uniquingKeysWith: { a, _ in a })
            for c in try handle.classes(ifindex: ifb.index).sorted(by: { $0.handle < $1.handle }) {
                guard let h = c.htb, c.handle.major == layout.root.major else { continue }
                var limit: UInt32?
                switch leafByParent[c.handle]?.kind {
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
