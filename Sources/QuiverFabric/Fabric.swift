import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology
import QuiverVM

/// Brings topologies up and down. The fabric (switches, host-side VNIC ends, IFBs) lives in
/// `fabric` — the host namespace by default, or a namespace (tests and benchmarks use one they
/// own); each host is a named namespace.
public struct Fabric: Sendable {
    public let fabricNamespace: NetworkNamespace?
    public let handle: NetlinkHandle
    /// nftables (isolation and protection) in the same namespace.
    public let firewall: Firewall
    /// Each guest's qemu in its jail (docs/VM.md). `false` runs qemu as root in the host's
    /// namespaces, as before jails: only to measure what confinement costs (bench/vm).
    public var confineGuests = true

    public init(fabric: NetworkNamespace? = nil) throws {
        fabricNamespace = fabric
        handle = try NetlinkHandle(namespace: fabric)
        firewall = try Firewall(namespace: fabric)
        Fabric.raiseDescriptorLimit()
    }

    /// Computes the plan without changing anything.
    public func plan(_ t: Topology) throws -> Plan {
        try planning(t, desired: try desired(t), onFabricLinks: nil).plan
    }

    /// What planning found: the plan, and what it was made from (the executors work from it).
    package struct Planning {
        var plan: Plan
        var desired: DesiredFabric
        var current: CurrentFabric
        /// A socket in each host namespace that exists.
        var handles: [String: NetlinkHandle]
    }

    /// `onFabricLinks` runs as soon as the fabric's links are read, before the hosts are.
    package func planning(_ t: Topology, desired: DesiredFabric, onFabricLinks: (([Link]) -> Void)?) throws -> Planning {
        let journal = try Journal.load(try TopologyName(validating: t.name), node: t.node)
        let capped = Set(desired.capGroups.flatMap { $0.members.map(\.device) })
        let uncapped = Set(desired.vnics.map(\.hostDevice).filter { !capped.contains($0) }.map(\.rawValue))
        let (read, handles) = try CurrentFabric.read(topology: t.name, node: t.node, guestsElsewhere: t.hostsElsewhere, wanted: desired.namespaces.map(\.name.rawValue), uncapped: uncapped, fabric: handle,
                                                        firewall: firewall, onFabricLinks: onFabricLinks)
        var current = read
        current.forwarding = try CurrentFabric.forwarding(handle, links: current.links, names: desired.names, wanted: !desired.segments.isEmpty)
        let plan = Planner.plan(current: current, desired: desired, pendingNamespaces: Set(journal?.pendingNamespaces ?? []),
                                pendingLinks: Set(journal?.pendingLinks ?? []))
        return Planning(plan: plan, desired: desired, current: current, handles: handles)
    }

    /// Large topologies hold a descriptor per namespace while they are wired up.
    static func raiseDescriptorLimit() {
        var l = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &l) == 0, l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &l)
        }
    }
}
