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
    /// Every counter of `t`, read now (``StatsReader``).
    public func stats(_ t: Topology, queueLimits: Bool = true) throws -> TopologyStats {
        try StatsReader(self, t).read(queueLimits: queueLimits)
    }
}
