import CNetlink
import QuiverKernel
import QuiverNetlink

/// Something on a device that Quiver did not create and will not touch.
public struct OwnershipConflict: Error, Sendable, Equatable, CustomStringConvertible {
    public var device: String
    public var found: String
    public var description: String {
        "device \(device) already carries \(found), which Quiver did not create; Quiver leaves it alone — remove it yourself or cap another device"
    }
}

/// What an apply did.
public struct ShapingReport: Sendable, Equatable {
    public var created = 0
    public var changed = 0
    public var deleted = 0
    public init() {}
    public var isNoOp: Bool { created == 0 && changed == 0 && deleted == 0 }
}

/// Applies cap groups to the kernel through one namespace's handle, and reads them back.
///
/// Ownership: Quiver's IFBs carry the group's owner tag in `ifalias`; on member devices Quiver
/// owns a `clsact` qdisc whose only filters are its two redirects (priorities 0xC1/0xC2). A
/// device with any other ingress/clsact/root qdisc, or an IFB of the same name without the tag,
/// is a conflict: reported, never changed.
public struct Shaper: Sendable {
    public let handle: NetlinkHandle
    public let policy: ShapingPolicy
    /// Compare only: the report counts what an apply would create, change and delete, and
    /// nothing is sent (what a CNI `CHECK` asks). An IFB that is missing ends the comparison there.
    public var compareOnly = false

    public init(handle: NetlinkHandle, policy: ShapingPolicy = ShapingPolicy()) {
        self.handle = handle
        self.policy = policy
    }

    // MARK: Apply

    /// Makes the kernel match `group`: creates what is missing, changes classes in place
    /// (`tc class change`: traffic keeps flowing), deletes what is no longer wanted. Idempotent.
    @discardableResult
    public func apply(_ group: CapGroup) throws -> ShapingReport {
        try apply([group])
    }

    /// Applies several groups reading the namespace's links and qdiscs once (a dump of every
    /// qdisc of a large fabric is the expensive part of a no-op re-apply).
    ///
    /// `links`: the namespace's links as the caller just read them, if nothing changed since
    /// (saves a dump of every link). `state`: what ``read(_:links:)`` found, if nothing changed
    /// since (saves every dump).
    @discardableResult
    public func apply(_ groups: [CapGroup], links: [Link]? = nil, state: ShapingState? = nil) throws -> ShapingReport {
        let problems = groups.flatMap { $0.problems() }
        guard problems.isEmpty else { throw InvalidValue(problems.joined(separator: "; ")) }
        var snapshot = try state?.snapshot ?? Snapshot(links: try links ?? handle.links(statistics: false), qdiscs: try handle.qdiscs())
        var total = ShapingReport()
        // Nothing is created before every group's member devices are known to exist and to carry
        // nothing foreign. Then every group's missing IFBs go in one batch, followed by one fresh
        // look at links and qdiscs (not one per group: each is a dump of every device).
        for g in groups { _ = try memberIndexes(g, snapshot: snapshot) }
        try checkBlocks(groups, snapshot: snapshot)
        var create: [NetlinkRequest] = []
        for g in groups { create += try missingIFBs(g, snapshot: snapshot, report: &total) }
        var state = state
        if !create.isEmpty {
            if compareOnly { return total }
            try handle.perform(create)
            snapshot = Snapshot(links: try handle.links(statistics: false), qdiscs: try handle.qdiscs())
            state = nil
        }
        for g in groups {
            let r = try apply(g, snapshot: &snapshot, state: state)
            total.created += r.created
            total.changed += r.changed
            total.deleted += r.deleted
        }
        return total
    }

    /// Requests that create the groups' IFBs missing from `links` (a caller can send them early,
    /// with other links it makes, so ``apply(_:links:state:)`` finds them and reads the namespace
    /// once). A name that exists is left for ``apply(_:links:state:)`` to judge.
    public func ifbRequests(_ groups: [CapGroup], links: [Link]) -> (requests: [NetlinkRequest], ifbs: Int) {
        let snapshot = Snapshot(links: links, qdiscs: [])
        var report = ShapingReport()
        let requests = groups.flatMap { g in (try? missingIFBs(g, snapshot: snapshot, report: &report)) ?? [] }
        return (requests, report.created)
    }

    /// Reads everything ``apply(_:links:state:)`` compares for `groups` — the namespace's qdiscs,
    /// each existing IFB's classes and filters, each group's block filters — without changing
    /// anything, so a caller can do it while it reads other things (a no-op re-apply then makes
    /// no dump of its own).
    public func read(_ groups: [CapGroup], links: [Link]) throws -> ShapingState {
        let snapshot = Snapshot(links: links, qdiscs: try handle.qdiscs())
        var state = ShapingState(snapshot: snapshot)
        for g in groups {
            for d in Direction.allCases {
                guard let ifb = snapshot.linksByName[g.ifb(d).rawValue] else { continue }
                state.classes[ifb.index] = try handle.classes(ifindex: ifb.index)
                state.filters[ifb.index] = try handle.filters(ifindex: ifb.index, parent: ShapingPlan.root)
            }
            for block in [g.ingressBlock, g.egressBlock] { state.blockFilters[block] = try handle.filters(.block(block)) }
        }
        return state
    }

    /// Links and qdiscs of the namespace, indexed.
    struct Snapshot {
        var links: [Link]
        var linksByName: [String: Link]
        var qdiscsByDevice: [Int32: [Qdisc]]

        init(links: [Link], qdiscs: [Qdisc]) {
            self.links = links
            linksByName = Dictionary(links.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            qdiscsByDevice = Dictionary(grouping: qdiscs, by: \.ifindex)
        }
    }

    func apply(_ group: CapGroup, snapshot: inout Snapshot, state: ShapingState? = nil) throws -> ShapingReport {
        var report = ShapingReport()
        let qdiscsByDevice = snapshot.qdiscsByDevice

        let deviceIndex = try memberIndexes(group, snapshot: snapshot)

        // The group's IFBs: ours by tag, created when missing (``apply(_:)`` made them already).
        var state = state
        let create = try missingIFBs(group, snapshot: snapshot, report: &report)
        if !create.isEmpty {
            if compareOnly { return report }
            try handle.perform(create)
            snapshot = Snapshot(links: try handle.links(statistics: false), qdiscs: try handle.qdiscs())
            state = nil
        }
        let ifbIndex = Dictionary(uniqueKeysWithValues: Direction.allCases.map { d in
            (d, snapshot.linksByName[group.ifb(d).rawValue]!.index)
        })

        for d in Direction.allCases {
            let layout = ShapingPlan.layout(group, d, policy: policy)
            try reconcile(layout, ifindex: ifbIndex[d]!, device: group.ifb(d).rawValue,
                          qdiscs: qdiscsByDevice[ifbIndex[d]!] ?? [], state: state, report: &report)
        }
        // Member devices join the group's shared blocks (one pipelined batch), then the blocks
        // get their redirects.
        var steps: [NetlinkRequest] = []
        for m in group.members {
            let index = deviceIndex[m.device]!
            steps += attach(m, ifindex: index, group: group, qdiscs: qdiscsByDevice[index] ?? [], report: &report)
        }
        if compareOnly && !steps.isEmpty { return report }  // unbound hooks: their blocks are not there to read
        if !compareOnly { try handle.perform(steps) }
        // Clsact hooks just bound make their blocks: what was read before they existed is stale.
        try reconcileBlocks(group, from: ifbIndex[.fromEndpoint]!, to: ifbIndex[.toEndpoint]!,
                            state: steps.isEmpty ? state : nil, report: &report)
        return report
    }

    /// Each member's interface index; throws if a member device is missing or carries a qdisc
    /// Quiver did not make.
    func memberIndexes(_ group: CapGroup, snapshot: Snapshot) throws -> [InterfaceName: Int32] {
        var deviceIndex: [InterfaceName: Int32] = [:]
        for m in group.members {
            guard let l = snapshot.linksByName[m.device.rawValue] else {
                throw NetlinkError(context: RequestContext("cap", m.device.rawValue), errno: .noSuchDevice,
                                   hint: "device \(m.device) of \(m.name) not found in the \(handle.location)")
            }
            deviceIndex[m.device] = l.index
            try checkDeviceOwnership(l, qdiscs: snapshot.qdiscsByDevice[l.index] ?? [])
        }
        return deviceIndex
    }

    /// A group's shared tc blocks are numbered from a hash of its owner tag, so two groups can
    /// draw the same number: then one's redirects would take the other's traffic. Refused before
    /// anything changes — when two of `groups` draw one, or a device that belongs to another
    /// owner (another topology, another device's cap, nobody's) is bound to one of a group's.
    /// Devices of `groups`, and devices tagged by the same owner (a VNIC whose caps this apply
    /// removes), are rebound as the apply goes.
    func checkBlocks(_ groups: [CapGroup], snapshot: Snapshot) throws {
        var drawn: [UInt32: String] = [:]
        for g in groups {
            for b in [g.ingressBlock, g.egressBlock] {
                if let other = drawn[b], other != g.name {
                    throw OwnershipConflict(device: g.ifbFrom.rawValue, found: "tc block \(b), which caps \(other) and \(g.name) would share "
                                            + "(their owner tags hash to the same block); rename one")
                }
                drawn[b] = g.name
            }
        }
        let members = Set(groups.flatMap { $0.members.map(\.device.rawValue) })
        func scope(_ tag: String) -> Substring { tag.prefix { $0 != "/" } }
        for g in groups {
            let mine: Set<UInt32> = [g.ingressBlock, g.egressBlock]
            for l in snapshot.links where !members.contains(l.name) {
                for q in snapshot.qdiscsByDevice[l.index] ?? [] {
                    guard case .clsact(let i, let e) = q.kind, [i, e].contains(where: { $0.map(mine.contains) ?? false }) else { continue }
                    if let tag = l.alias, tag.hasPrefix("quiver:"), scope(tag) == scope(g.ownerTag), !g.ownerTag.hasPrefix("quiver:cap/") { continue }
                    throw OwnershipConflict(device: l.name, found: "a clsact hook bound to tc block \(i ?? 0)/\(e ?? 0), which the caps of \(g.name) "
                                            + "would share (their owner tags hash to the same block); rename the tenant or the topology")
                }
            }
        }
    }

    /// Requests for the group's IFBs that do not exist yet; an IFB of that name without the
    /// group's tag is a conflict.
    func missingIFBs(_ group: CapGroup, snapshot: Snapshot, report: inout ShapingReport) throws -> [NetlinkRequest] {
        var create: [NetlinkRequest] = []
        for d in Direction.allCases {
            let name = group.ifb(d)
            if let l = snapshot.linksByName[name.rawValue] {
                guard l.alias == group.ownerTag else {
                    throw OwnershipConflict(device: name.rawValue, found: "the name (an existing \(l.linkClass) link, alias \"\(l.alias ?? "")\")")
                }
            } else {
                // No IPv6 link-local address: an IFB only passes frames redirected to it.
                create += LinkRequest.add(name, IFB(), LinkSettings(up: true, group: group.linkGroup, alias: group.ownerTag, ipv6LinkLocal: LinkSettings.noLinkLocal))
                report.created += 1
            }
        }
        return create
    }

    /// Refuses devices with a root, ingress or clsact qdisc someone else added. Quiver's clsact
    /// is bound to two shared blocks in its own index range, so no filter dump is needed.
    func checkDeviceOwnership(_ link: Link, qdiscs: [Qdisc]) throws {
        for q in qdiscs where !q.isKernelDefault {
            if q.parent == .root {
                throw OwnershipConflict(device: link.name, found: "a root \(q.kind.name) qdisc (handle \(q.handle))")
            }
            if q.parent == .ingressParent && !CapGroup.isQuiverClsact(q.kind) {
                let what = q.kind.name == "clsact" ? "a clsact qdisc with filters of its own" : "an \(q.kind.name) qdisc (handle \(q.handle))"
                throw OwnershipConflict(device: link.name, found: what)
            }
        }
    }

    /// Brings one IFB's HTB tree to `layout`.
    func reconcile(_ layout: IFBLayout, ifindex: Int32, device: String, qdiscs: [Qdisc], state: ShapingState? = nil,
                   report: inout ShapingReport) throws {
        let hasRoot = qdiscs.contains { $0.parent == .root && $0.handle == layout.root && $0.kind == .htb(defaultClass: layout.defaultClass.minor) }
        if !hasRoot {
            // Our own IFB: whatever root it has is ours to replace; its children go with it.
            report.created += 1
            if compareOnly { return }
            try handle.perform(QdiscRequest.make(.replace, ifindex: ifindex, device: device, handle: layout.root, parent: .root,
                                                 kind: .htb(defaultClass: layout.defaultClass.minor)))
        }
        // Only the HTB's classes: a TBF leaf shows up in the dump with a class of its own.
        let currentClasses = hasRoot
            ? try (state?.classes[ifindex] ?? handle.classes(ifindex: ifindex)).filter { $0.kind == "htb" && $0.handle.major == layout.root.major } : []
        let currentFilters = hasRoot
            ? try (state?.filters[ifindex] ?? handle.filters(ifindex: ifindex, parent: layout.root)).filter { $0.u32?.keys.isEmpty == false } : []
        let leaves = hasRoot ? qdiscs.filter { $0.parent != .root } : []

        var steps: [NetlinkRequest] = []
        // 1. Filters: if the set differs, take ours out first (a class with filters pointing at it
        //    cannot be deleted), and put the wanted set back at the end.
        let wanted = Set(layout.filters.map { FilterKey($0.priority, $0.protocolNumber, $0.filter) })
        let present = Set(currentFilters.compactMap { f in f.u32.map { FilterKey(f.priority, f.protocolNumber, $0) } })
        let filtersDiffer = wanted != present
        if filtersDiffer {
            for prio in Set(currentFilters.map(\.priority)) {
                steps.append(FilterRequest.delete(ifindex: ifindex, device: device, parent: layout.root, priority: prio))
            }
            report.deleted += present.subtracting(wanted).count
        }
        // 2. Classes no longer wanted, deepest first.
        let wantedIDs = Set(layout.classes.map(\.id))
        for c in currentClasses.filter({ !wantedIDs.contains($0.handle) }).sorted(by: { $0.handle.minor > $1.handle.minor }) {
            steps.append(ClassRequest.delete(ifindex: ifindex, device: device, classID: c.handle))
            report.deleted += 1
        }
        // 3. Wanted classes: add, or change in place; then their leaf queues.
        let classByID = Dictionary(currentClasses.map { ($0.handle, $0) }, uniquingKeysWith: { a, _ in a })
        let leafByParent = Dictionary(leaves.map { ($0.parent, $0) }, uniquingKeysWith: { a, _ in a })
        for c in layout.classes {
            // The kernel reports a top-level class's parent as "root", not as the qdisc.
            if let cur = classByID[c.id],
               (cur.parent == .root ? layout.root : cur.parent) == c.parent {
                if let h = cur.htb, !h.sameShaping(as: c.htb, inner: c.leafQueue == nil) {
                    steps.append(ClassRequest.make(.change, ifindex: ifindex, device: device, classID: c.id, parent: c.parent, htb: c.htb))
                    report.changed += 1
                }
            } else {
                if classByID[c.id] != nil {
                    steps.append(ClassRequest.delete(ifindex: ifindex, device: device, classID: c.id))
                }
                steps.append(ClassRequest.make(.add, ifindex: ifindex, device: device, classID: c.id, parent: c.parent, htb: c.htb))
                report.created += 1
            }
            guard let queue = c.leafQueue else { continue }
            let leaf = IFBLayout.leafHandle(for: c.id)
            if let q = leafByParent[c.id], q.handle == leaf {
                if !q.kind.sameQueue(as: queue) {
                    // A different kind cannot be changed in place; replace swaps it atomically.
                    let verb: TCVerb = q.kind.name == queue.name ? .change : .replace
                    steps.append(QdiscRequest.make(verb, ifindex: ifindex, device: device, handle: leaf, parent: c.id, kind: queue))
                    report.changed += 1
                }
            } else {
                steps.append(QdiscRequest.make(.replace, ifindex: ifindex, device: device, handle: leaf, parent: c.id, kind: queue))
                report.created += 1
            }
        }
        // 4. The filters.
        if filtersDiffer {
            for f in layout.filters {
                steps.append(FilterRequest.addU32(ifindex: ifindex, device: device, parent: layout.root,
                                                  priority: f.priority, protocolNumber: f.protocolNumber, filter: f.filter))
            }
            report.created += wanted.subtracting(present).count
        }
        if !compareOnly { try handle.perform(steps) }
    }

    /// Binds a member device's clsact hooks to the group's shared blocks: a fabric port's
    /// ingress (what the endpoint sends) to the `from` block, its egress to the `to` block; a
    /// device that is the endpoint's own end (macvtap) the other way round.
    func attach(_ member: CapMember, ifindex: Int32, group: CapGroup, qdiscs: [Qdisc], report: inout ShapingReport) -> [NetlinkRequest] {
        let device = member.device
        let want = member.facesEndpoint ? QdiscKind.clsact(ingressBlock: group.egressBlock, egressBlock: group.ingressBlock)
            : QdiscKind.clsact(ingressBlock: group.ingressBlock, egressBlock: group.egressBlock)
        let have = qdiscs.first { $0.parent == .ingressParent }
        if have?.kind == want { return [] }
        var steps: [NetlinkRequest] = []
        if have != nil {
            // Another group's blocks (the VNIC changed tenant): blocks cannot be re-bound in place.
            steps.append(QdiscRequest.delete(ifindex: ifindex, device: device.rawValue, handle: .ingressHandle, parent: .ingressParent))
            report.changed += 1
        } else {
            report.created += 1
        }
        steps.append(QdiscRequest.make(.add, ifindex: ifindex, device: device.rawValue, handle: .ingressHandle,
                                       parent: .ingressParent, kind: want))
        return steps
    }

    /// One match-all redirect per block: everything the members receive goes to the group's
    /// `from` IFB, everything they send out to the `to` IFB. A block exists only while a device is
    /// bound to it, so this runs after ``attach``.
    func reconcileBlocks(_ group: CapGroup, from: Int32, to: Int32, state: ShapingState? = nil, report: inout ShapingReport) throws {
        var steps: [NetlinkRequest] = []
        for (block, prio, target) in [(group.ingressBlock, ShapingPlan.deviceIngressPriority, from),
                                      (group.egressBlock, ShapingPlan.deviceEgressPriority, to)] {
            let want = U32Filter(keys: U32Key.all, actions: [.redirect(toIndex: target)])
            let current = try state?.blockFilters[block] ?? handle.filters(.block(block))
            let have = current.compactMap(\.u32).filter { !$0.keys.isEmpty }
            if have == [want] && current.allSatisfy({ $0.priority == prio }) { continue }
            for p in Set(current.map(\.priority)) { steps.append(FilterRequest.delete(.block(block), priority: p)) }
            steps.append(FilterRequest.addU32(.block(block), priority: prio, protocolNumber: UInt16(ETH_P_ALL), filter: want))
            if have.isEmpty { report.created += 1 } else { report.changed += 1 }
        }
        if !compareOnly { try handle.perform(steps) }
    }

    // MARK: Remove

    /// Stops shaping a device: deletes its clsact qdisc if it is Quiver's. Returns false when the
    /// device carried none.
    @discardableResult
    public func detach(device: InterfaceName) throws -> Bool {
        guard let l = try handle.linkIfPresent(named: device) else { return false }
        let qdiscs = try handle.qdiscs(ifindex: l.index)
        guard qdiscs.contains(where: { $0.parent == .ingressParent }) else { return false }
        try checkDeviceOwnership(l, qdiscs: qdiscs.filter { $0.parent == .ingressParent })
        try handle.perform(QdiscRequest.delete(ifindex: l.index, device: device.rawValue, handle: .ingressHandle, parent: .ingressParent))
        return true
    }

    /// Removes a group: detaches its members and deletes its IFBs (only when tagged as its own).
    public func remove(_ group: CapGroup) throws {
        for m in group.members { try detach(device: m.device) }
        var ours: [InterfaceName] = []
        for d in Direction.allCases {
            guard let l = try handle.linkIfPresent(named: group.ifb(d)) else { continue }
            guard l.alias == group.ownerTag else {
                throw OwnershipConflict(device: l.name, found: "the name (alias \"\(l.alias ?? "")\")")
            }
            ours.append(group.ifb(d))
        }
        try handle.deleteLinksTogether(ours)
    }
}

/// A filter's identity for comparing wanted with present.
struct FilterKey: Hashable {
    var priority: UInt16
    var protocolNumber: UInt16
    var keys: [KeyTriple]
    var classID: UInt32?
    var actions: [Int32]

    struct KeyTriple: Hashable { var mask: UInt32; var value: UInt32; var offset: Int32 }

    init(_ priority: UInt16, _ protocolNumber: UInt16, _ f: U32Filter) {
        self.priority = priority
        self.protocolNumber = protocolNumber
        keys = f.keys.map { KeyTriple(mask: $0.mask, value: $0.value, offset: $0.offset) }
        classID = f.classID?.rawValue
        actions = f.actions.map { if case .redirect(let i) = $0 { return i } else { return 0 } }
    }
}

extension QdiscKind {
    /// Equal for planning: a TBF's burst reads back rounded to ticks, so only rate and limit count.
    func sameQueue(as other: QdiscKind) -> Bool {
        if case .tbf(let a) = self, case .tbf(let b) = other { return a.rate == b.rate && a.limit == b.limit }
        return self == other
    }
}

extension HTBClass {
    /// Same rates, priority and quantum; bursts equal within the microsecond rounding of ticks.
    /// The kernel keeps an inner class's quantum and priority from when it was a leaf (it ignores
    /// them on change), so for inner classes only rates and bursts count.
    func sameShaping(as other: HTBClass, inner: Bool) -> Bool {
        func close(_ a: UInt32, _ b: UInt32, _ rate: Bitrate) -> Bool {
            abs(Int64(a) - Int64(b)) <= Int64(rate.bytesPerSecond / 1_000_000) + 2
        }
        return rate == other.rate && ceil == other.ceil && (inner || (priority == other.priority && quantum == other.quantum))
            && close(burst, other.burst, rate) && close(cburst, other.cburst, ceil)
    }
}

/// What ``Shaper/read(_:links:)`` found; valid until the next change to the namespace.
public struct ShapingState: Sendable {
    var snapshot: Shaper.Snapshot
    var classes: [Int32: [TrafficClass]] = [:]
    var filters: [Int32: [Filter]] = [:]
    var blockFilters: [UInt32: [Filter]] = [:]
}

extension CapGroup {
    /// A clsact qdisc bound to two blocks in Quiver's range (``CapGroup/blockRange``) is Quiver's.
    public static func isQuiverClsact(_ kind: QdiscKind) -> Bool {
        guard case .clsact(let i?, let e?) = kind else { return false }
        return i & 0xFF00_0000 == blockRange && e & 0xFF00_0000 == blockRange
    }
}
