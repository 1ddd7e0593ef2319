import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology

/// One VNIC's counters, like a `dlstat` row, seen from the VNIC: "in" is what it received.
public struct VNICStats: Sendable, Codable, Equatable {
    public var topology: String
    public var tenant: String
    public var host: String
    public var vnic: String
    public var link: String
    public var ipackets: UInt64 = 0
    public var rbytes: UInt64 = 0
    public var opackets: UInt64 = 0
    public var obytes: UInt64 = 0
    /// Packets the caps dropped on the way to the VNIC / from it.
    public var capDropsIn: UInt64 = 0
    public var capDropsOut: UInt64 = 0
    /// Packets protection dropped, by kind (`mac`, `ip`, `restricted`, `dhcp`), only kinds that are on.
    public var spoofDrops: [String: UInt64] = [:]
}

/// Everything `quiver stats` prints for a topology.
public struct TopologyStats: Sendable, Codable, Equatable {
    public var vnics: [VNICStats]
    /// Frames dropped because they were headed to another tenant's VNIC, by destination tenant.
    public var isolationDrops: [String: UInt64]
    /// A node of a multi-node file: VXLAN packets for the topology's VNIs from an address that
    /// is no node's, dropped by the underlay guard (nil: the topology has no segments here).
    public var underlayDrops: UInt64? = nil
    /// A node's VXLAN segments and what crossed each.
    public var segments: [SegmentStats] = []
    /// Every cap class as configured and counted, by tenant (what `/metrics` exports).
    public var capClasses: [TenantClass] = []
}

/// One VXLAN segment's counters on a node: "out" is what left towards other nodes.
/// One of a tenant's cap classes: "aggregate", "default", `host/vnic` or `host/vnic/flow`.
public struct TenantClass: Sendable, Codable, Equatable {
    public var tenant: String
    public var usage: ClassUsage
}

public struct SegmentStats: Sendable, Codable, Equatable {
    public var tenant: String
    public var link: String
    public var vni: UInt32
    public var ipackets: UInt64 = 0
    public var rbytes: UInt64 = 0
    public var opackets: UInt64 = 0
    public var obytes: UInt64 = 0
}

extension Fabric {
    /// Reads every counter with dumps: links (one), tc classes (per tenant IFB), qdiscs (one,
    /// for the leaves' queue limits; `queueLimits: false` skips it), nftables counters (one).
    public func stats(_ t: Topology, queueLimits: Bool = true) throws -> TopologyStats {
        let desired = try self.desired(t)
        let links = Dictionary(try handle.links().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var rows: [VNICStats] = desired.vnics.map { v in
            var r = VNICStats(topology: t.name, tenant: v.tenant, host: v.host, vnic: v.name.rawValue, link: v.hostDevice.rawValue)
            if let l = links[v.hostDevice.rawValue], KernelNames(t).owns(l), let s = l.statistics {
                (r.ipackets, r.rbytes, r.opackets, r.obytes) = v.endpointCounters(s)
            }
            return r
        }
        let shaper = Shaper(handle: handle)
        var classes: [TenantClass] = []
        let groups = desired.capGroups.filter { links[$0.ifbFrom.rawValue] != nil || links[$0.ifbTo.rawValue] != nil }
        let qdiscs = groups.isEmpty || !queueLimits ? [] : try handle.qdiscs()
        // A class labelled `host/vnic` or `host/vnic/flow` counts for that VNIC's row.
        let rowOf = Dictionary(rows.indices.map { ("\(rows[$0].tenant)/\(rows[$0].host)/\(rows[$0].vnic)", $0) }, uniquingKeysWith: { a, _ in a })
        for g in groups {
            for c in try shaper.status(g, qdiscs: qdiscs) {
                classes.append(TenantClass(tenant: g.name, usage: c))
                let parts = c.label.split(separator: "/", maxSplits: 2)
                guard parts.count >= 2, let i = rowOf["\(g.name)/\(parts[0])/\(parts[1])"] else { continue }
                if c.direction == .toEndpoint { rows[i].capDropsIn += UInt64(c.statistics.drops) } else { rows[i].capDropsOut += UInt64(c.statistics.drops) }
            }
        }
        var isolation: [String: UInt64] = [:]
        var underlay: UInt64?
        let names = KernelNames(t)
        let segments: [SegmentStats] = desired.segments.map { g in
            var r = SegmentStats(tenant: g.tenant, link: g.device.rawValue, vni: g.vni)
            if let l = links[g.device.rawValue], names.owns(l), let s = l.statistics { (r.ipackets, r.rbytes, r.opackets, r.obytes) = (s.rxPackets, s.rxBytes, s.txPackets, s.txBytes) }
            return r
        }
        if case .installed = try FirewallState.read(firewall, table: names.firewallTable, ownerTag: names.tagPrefix) {
            let counters = try firewall.counters(table: names.firewallTable)
            if !desired.segments.isEmpty { underlay = counters[UnderlayGuard.counter]?.packets ?? 0 }
            for (i, v) in desired.vnics.enumerated() {
                for k in ProtectionKind.allCases where v.protection.contains(k) {
                    rows[i].spoofDrops[k.counter] = counters[Ruleset.counter(device: v.hostDevice.rawValue, k)]?.packets ?? 0
                }
            }
            for tenant in Set(desired.vnics.map(\.tenant)) {
                isolation[tenant] = counters[Ruleset.isolationCounter(tenant)]?.packets ?? 0
            }
        }
        var out = TopologyStats(vnics: rows, isolationDrops: isolation)
        out.underlayDrops = underlay
        out.segments = segments
        out.capClasses = classes
        return out
    }
}
