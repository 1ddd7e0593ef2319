import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology

/// Reads a topology's counters. What depends only on the file — the desired fabric, the rows,
/// which class belongs to which VNIC — is worked out once, so a daemon serving `/metrics` keeps
/// one reader per topology and each read is the dumps alone: link counters (one), tc classes
/// (per tenant IFB), qdiscs (one, for the leaves' queue limits; `queueLimits: false` skips it),
/// nftables counters (one).
///
/// Link counters: the first read dumps the links (names, tags, counters) and remembers the index
/// of each owned device it needs. A later read asks only for counters by index
/// (``LinkCounterRequest``), and it uses them only when the namespace holds exactly the
/// indices it held at that dump — a link made or deleted since changes the set, and the read
/// dumps the links again. (The kernel does not reuse an index soon: it allocates them
/// cyclically.)
public final class StatsReader: @unchecked Sendable {
    public let fabric: Fabric
    public let topology: Topology
    let desired: DesiredFabric
    let names: KernelNames
    /// Every VNIC's row with zero counters, in the desired fabric's order.
    let blankRows: [VNICStats]
    /// Each cap group's class labels (in `desired.capGroups` order), and the row each label
    /// counts for: a class labelled `host/vnic` or `host/vnic/flow` counts for that VNIC's.
    let classLabels: [ClassLabels]
    let rowOfLabel: [[String: Int]]
    /// The nftables counter of each VNIC's protection kinds: (row, kind's name, counter name).
    let protectionCounters: [(row: Int, kind: String, counter: String)]
    /// The devices a read looks up: VNIC host sides, segments, tenant IFBs; and the IFBs alone
    /// (counted even when untagged, as before: their names are the topology's).
    let wanted: Set<String>
    let ifbs: Set<String>

    private struct LinkIndex {
        /// Every index in the namespace at the last link dump.
        var all: Set<Int32>
        /// Index of each wanted device present then (VNICs and segments only when owned).
        var byName: [String: Int32]
    }
    private let lock = NSLock()
    private var linkIndex: LinkIndex?
    private var spare: NetlinkHandle?

    public init(_ fabric: Fabric, _ t: Topology) throws {
        self.fabric = fabric
        topology = t
        desired = try fabric.desired(t)
        names = KernelNames(t)
        let rows = desired.vnics.map { VNICStats(topology: t.name, tenant: $0.tenant, host: $0.host, vnic: $0.name.rawValue, link: $0.hostDevice.rawValue) }
        blankRows = rows
        let rowOf = Dictionary(rows.indices.map { ("\(rows[$0].tenant)/\(rows[$0].host)/\(rows[$0].vnic)", $0) }, uniquingKeysWith: { a, _ in a })
        let policy = Shaper(handle: fabric.handle).policy
        classLabels = desired.capGroups.map { ClassLabels($0, policy: policy) }
        rowOfLabel = zip(desired.capGroups, classLabels).map { g, l in
            l.all.reduce(into: [:]) { out, label in
                let parts = label.split(separator: "/", maxSplits: 2)
                if parts.count >= 2, let i = rowOf["\(g.name)/\(parts[0])/\(parts[1])"] { out[label] = i }
            }
        }
        protectionCounters = desired.vnics.enumerated().flatMap { i, v in
            ProtectionKind.allCases.filter { v.protection.contains($0) }.map { (i, $0.counter, Ruleset.counter(device: v.hostDevice.rawValue, $0)) }
        }
        ifbs = Set(desired.capGroups.flatMap { [$0.ifbFrom.rawValue, $0.ifbTo.rawValue] })
        wanted = ifbs.union(desired.vnics.map(\.hostDevice.rawValue) + desired.segments.map(\.device.rawValue))
    }

    /// Index and counters of each wanted device that is there (VNICs and segments: owned ones).
    func wantedLinks() throws -> [String: (index: Int32, statistics: LinkStatistics)] {
        let handle = fabric.handle
        if let known = lock.withLock({ linkIndex }) {
            let counters = try handle.linkCounters()
            if Set(counters.keys) == known.all {
                return known.byName.compactMapValues { i in counters[i].map { (i, $0) } }
            }
        }
        let links = try handle.links()
        var out: [String: (index: Int32, statistics: LinkStatistics)] = [:]
        for l in links where wanted.contains(l.name) && (ifbs.contains(l.name) || names.owns(l)) {
            out[l.name] = (l.index, l.statistics ?? LinkStatistics())
        }
        let index = LinkIndex(all: Set(links.map(\.index)), byName: out.mapValues(\.index))
        lock.withLock { linkIndex = index }
        return out
    }

    public func read(queueLimits: Bool = true) throws -> TopologyStats {
        let links = try wantedLinks()
        var rows = blankRows
        for (i, v) in desired.vnics.enumerated() {
            if let s = links[v.hostDevice.rawValue]?.statistics {
                (rows[i].ipackets, rows[i].rbytes, rows[i].opackets, rows[i].obytes) = v.endpointCounters(s)
            }
        }
        var out = TopologyStats(vnics: rows, isolationDrops: [:])
        out.segments = desired.segments.map { g in
            var r = SegmentStats(tenant: g.tenant, link: g.device.rawValue, vni: g.vni)
            if let s = links[g.device.rawValue]?.statistics { (r.ipackets, r.rbytes, r.opackets, r.obytes) = (s.rxPackets, s.rxBytes, s.txPackets, s.txBytes) }
            return r
        }
        let groups = desired.capGroups.indices.filter { links[desired.capGroups[$0].ifbFrom.rawValue] != nil || links[desired.capGroups[$0].ifbTo.rawValue] != nil }
        let qdiscs = groups.isEmpty || !queueLimits ? [] : try fabric.handle.qdiscs()
        let ifindexes = links.mapValues(\.index)
        // The class dumps (one per IFB) and the nftables counters are independent reads: two
        // threads, each with its own socket, take them from one queue. (The class dumps take the
        // kernel's rtnl mutex one at a time; what overlaps is decoding, and the nft dump.) Results land in their group's slot, so the output
        // keeps the plan's order.
        let slots = ResultSlots<Dump>(count: groups.count + 1)
        let handles = [fabric.handle, groups.count > 1 ? try secondHandle() : fabric.handle]
        DispatchQueue.concurrentPerform(iterations: groups.count > 1 ? 2 : 1) { worker in
            let shaper = Shaper(handle: handles[worker])
            while let i = slots.claim() {
                slots.set(i, Result {
                    i == 0 ? .counters(try firewallCounters()) : .classes(try shaper.status(desired.capGroups[groups[i - 1]], qdiscs: qdiscs, ifindexes: ifindexes, labels: classLabels[groups[i - 1]]))
                })
            }
        }
        for (slot, g) in groups.enumerated() {
            guard case .classes(let classes) = try slots.get(slot + 1) else { continue }
            let tenant = desired.capGroups[g].name
            for c in classes {
                out.capClasses.append(TenantClass(tenant: tenant, usage: c))
                guard let i = rowOfLabel[g][c.label] else { continue }
                if c.direction == .toEndpoint { out.vnics[i].capDropsIn += UInt64(c.statistics.drops) } else { out.vnics[i].capDropsOut += UInt64(c.statistics.drops) }
            }
        }
        if case .counters(let counters?) = try slots.get(0) { add(counters, to: &out) }
        return out
    }

    private enum Dump {
        case classes([ClassUsage])
        case counters([String: NFTCounter]?)
    }

    /// A second route socket in the fabric's namespace, opened at the first read that needs it.
    private func secondHandle() throws -> NetlinkHandle {
        try lock.withLock {
            if let spare { return spare }
            let h = try NetlinkHandle(namespace: fabric.handle.namespace)
            spare = h
            return h
        }
    }

    /// The topology's nftables counters, when its table is there and Quiver's.
    private func firewallCounters() throws -> [String: NFTCounter]? {
        guard case .installed = try FirewallState.read(fabric.firewall, table: names.firewallTable, ownerTag: names.tagPrefix) else { return nil }
        return try fabric.firewall.counters(table: names.firewallTable)
    }

    /// Protection, isolation and underlay drops from those counters.
    private func add(_ counters: [String: NFTCounter], to out: inout TopologyStats) {
        if !desired.segments.isEmpty { out.underlayDrops = counters[UnderlayGuard.counter]?.packets ?? 0 }
        for (i, kind, name) in protectionCounters { out.vnics[i].spoofDrops[kind] = counters[name]?.packets ?? 0 }
        for tenant in Set(desired.vnics.map(\.tenant)) {
            out.isolationDrops[tenant] = counters[Ruleset.isolationCounter(tenant)]?.packets ?? 0
        }
    }
}
