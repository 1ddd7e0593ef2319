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

/// What ``Shaper/status(_:qdiscs:ifindexes:labels:)`` takes from the plan for one group: each
/// direction's root and class labels. It depends only on the group, so a reader that reads the
/// same groups again and again works it out once.
public struct ClassLabels: Sendable {
    let byDirection: [Direction: (root: UInt16, labels: [TCHandle: String])]

    public init(_ group: CapGroup, policy: ShapingPolicy = ShapingPolicy()) {
        byDirection = Dictionary(uniqueKeysWithValues: Direction.allCases.map { d in
            let layout = ShapingPlan.layout(group, d, policy: policy)
            return (d, (layout.root.major, Dictionary(uniqueKeysWithValues: layout.classes.map { ($0.id, $0.label) })))
        })
    }

    /// Every label the plan gives a class of the group, either direction.
    public var all: Set<String> { Set(byDirection.values.flatMap(\.labels.values)) }
}

extension Shaper {
    /// What the kernel has for `group`, class by class, labelled from the plan. `qdiscs`: one
    /// dump of the namespace's qdiscs for all groups (the kernel's qdisc dump cannot be narrowed
    /// to one device, so a dump per IFB reads every device's qdiscs each time).
    /// `ifindexes`: link indices by name, when the caller has them already (a lookup instead of
    /// a request per IFB; a name missing from it is an IFB that is not there). `labels`: the
    /// group's ``ClassLabels`` with this shaper's policy, when the caller keeps them.
    public func status(_ group: CapGroup, qdiscs: [Qdisc]? = nil, ifindexes: [String: Int32]? = nil, labels known: ClassLabels? = nil) throws -> [ClassUsage] {
        var out: [ClassUsage] = []
        let plan = known ?? ClassLabels(group, policy: policy)
        for d in Direction.allCases {
            let name = group.ifb(d)
            guard let index = try ifindexes.map({ $0[name.rawValue] }) ?? handle.linkIfPresent(named: name)?.index else { continue }
            let (root, labels) = plan.byDirection[d]!
            let leaves = try qdiscs.map { $0.filter { $0.ifindex == index } } ?? handle.qdiscs(ifindex: index)
            let leafByParent = Dictionary(leaves.map { ($0.parent, $0) }, uniquingKeysWith: { a, _ in a })
            for c in try handle.classes(ifindex: index).sorted(by: { $0.handle < $1.handle }) {
                guard let h = c.htb, c.handle.major == root else { continue }
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
