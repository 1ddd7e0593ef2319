import Foundation
import QuiverBandwidth
import QuiverFabric

/// The Prometheus text exposition format of Quiver's counters (``PrometheusText``): what
/// `quiver stats -o prometheus` prints and the daemon serves on `/metrics` and writes for
/// node_exporter's textfile collector. Rates are in bytes per second and times in seconds, as
/// Prometheus' conventions want base units.
public enum Metrics {
    /// What only a running daemon knows.
    public struct DaemonView: Sendable {
        public var topologies: [TopologyStatus]
        public var guests: [GuestWatch]
        public var startedAt: Date
        public init(topologies: [TopologyStatus], guests: [GuestWatch], startedAt: Date) {
            self.topologies = topologies
            self.guests = guests
            self.startedAt = startedAt
        }
    }

    public static func render(_ stats: [TopologyStats], daemon: DaemonView? = nil) -> String {
        String(decoding: exposition(stats, daemon: daemon).bytes(), as: UTF8.self)
    }

    /// The same text as the endpoint sends it. Each topology's rows in two halves, written on
    /// two threads into texts of their own and joined family by family
    /// (``PrometheusText/Exposition``): 1000 VNICs are 5 MB of text.
    public static func exposition(_ stats: [TopologyStats], daemon: DaemonView? = nil) -> PrometheusText.Exposition {
        let vnics = stats.reduce(0) { $0 + $1.vnics.count }, classes = stats.reduce(0) { $0 + $1.capClasses.count }
        var parts = [PrometheusText(), PrometheusText()]
        parts.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let texts = buffer
            DispatchQueue.concurrentPerform(iterations: 2) { half in
                let f = Families(&texts[half], vnics: vnics / 2 + 1, classes: classes / 2 + 1)
                for s in stats { add(s, half: half, to: &texts[half], f) }
                if half == 1, let daemon { add(daemon, to: &texts[half]) }
            }
        }
        return PrometheusText.Exposition(parts)
    }

    /// The per-VNIC and per-class families, declared once in this order so that every sample
    /// after that is an append without a name lookup (a family left without samples is not
    /// written).
    private struct Families {
        let rxPackets, rxBytes, txPackets, txBytes, capDrops, protectionDrops: PrometheusText.Family
        let classSent, classDrops, classOverlimits, classBacklogBytes, classBacklogPackets, classCeil, classFloor: PrometheusText.Family

        /// `vnics`, `classes`: how many rows the text will have, to make room for their lines.
        init(_ r: inout PrometheusText, vnics: Int, classes: Int) {
            let v = vnics * 120, c = classes * 128
            rxPackets = r.family("quiver_vnic_receive_packets_total", "Packets the VNIC received.", .counter, expected: v)
            rxBytes = r.family("quiver_vnic_receive_bytes_total", "Bytes the VNIC received.", .counter, expected: v)
            txPackets = r.family("quiver_vnic_transmit_packets_total", "Packets the VNIC sent.", .counter, expected: v)
            txBytes = r.family("quiver_vnic_transmit_bytes_total", "Bytes the VNIC sent.", .counter, expected: v)
            capDrops = r.family("quiver_vnic_cap_drops_total", "Packets dropped by bandwidth caps.", .counter, expected: 2 * v)
            protectionDrops = r.family("quiver_vnic_protection_drops_total", "Frames dropped by link protection, by kind.", .counter, expected: 3 * v)
            classSent = r.family("quiver_cap_class_sent_bytes_total", "Bytes a cap class let through.", .counter, expected: c)
            classDrops = r.family("quiver_cap_class_drops_total", "Packets a cap class dropped.", .counter, expected: c)
            classOverlimits = r.family("quiver_cap_class_overlimits_total", "Times a cap class was over its rate.", .counter, expected: c)
            classBacklogBytes = r.family("quiver_cap_class_backlog_bytes", "Bytes queued in a cap class now.", .gauge, expected: c)
            classBacklogPackets = r.family("quiver_cap_class_backlog_packets", "Packets queued in a cap class now.", .gauge, expected: c)
            classCeil = r.family("quiver_cap_ceil_bytes_per_second", "A cap class's configured ceiling (maxbw).", .gauge, expected: c)
            classFloor = r.family("quiver_cap_floor_bytes_per_second", "A cap class's configured guaranteed rate (floor).", .gauge, expected: c)
        }
    }

    /// Half 0: the first half of the VNICs and of the classes; half 1: the rest and the
    /// topology-wide counters.
    private static func add(_ s: TopologyStats, half: Int, to r: inout PrometheusText, _ f: Families) {
        func part<C: Collection>(_ c: C) -> C.SubSequence where C.Index == Int {
            half == 0 ? c.prefix(c.count / 2) : c.dropFirst(c.count / 2)
        }
        for v in part(s.vnics) {
            let l = PrometheusText.Labels([("topology", v.topology), ("tenant", v.tenant), ("host", v.host), ("vnic", v.vnic)])
            r.add(f.rxPackets, l, v.ipackets)
            r.add(f.rxBytes, l, v.rbytes)
            r.add(f.txPackets, l, v.opackets)
            r.add(f.txBytes, l, v.obytes)
            r.add(f.capDrops, l.adding("direction", "in"), v.capDropsIn)
            r.add(f.capDrops, l.adding("direction", "out"), v.capDropsOut)
            for (k, n) in v.spoofDrops.sorted(by: { $0.key < $1.key }) { r.add(f.protectionDrops, l.adding("kind", k), n) }
        }
        let topology = s.vnics.first?.topology ?? ""
        for c in part(s.capClasses) {
            // "in": towards the VNIC (what it receives), as for the VNIC counters.
            let l = PrometheusText.Labels([("topology", topology), ("tenant", c.tenant), ("class", c.usage.label), ("direction", c.usage.direction == .toEndpoint ? "in" : "out")])
            let st = c.usage.statistics
            r.add(f.classSent, l, st.bytes)
            r.add(f.classDrops, l, UInt64(st.drops))
            r.add(f.classOverlimits, l, UInt64(st.overlimits))
            r.add(f.classBacklogBytes, l, Double(st.backlog))
            r.add(f.classBacklogPackets, l, Double(st.queueLength))
            r.add(f.classCeil, l, Double(c.usage.ceil.bitsPerSecond) / 8)
            r.add(f.classFloor, l, Double(c.usage.rate.bitsPerSecond) / 8)
        }
        guard half == 1 else { return }
        for (tenant, n) in s.isolationDrops.sorted(by: { $0.key < $1.key }) {
            r.counter("quiver_tenant_isolation_drops_total", "Frames from other tenants kept from this tenant's VNICs.",
                      PrometheusText.Labels([("topology", topology), ("tenant", tenant)]), n)
        }
        if let u = s.underlayDrops {
            r.counter("quiver_underlay_drops_total", "VXLAN packets for the topology's VNIs from no node's address, dropped.", PrometheusText.Labels([("topology", topology)]), u)
        }
    }

    private static func add(_ d: DaemonView, to r: inout PrometheusText) {
        r.gauge("quiver_daemon_start_time_seconds", "When the daemon started, in seconds since the epoch.", PrometheusText.Labels(), d.startedAt.timeIntervalSince1970)
        for t in d.topologies {
            let l = PrometheusText.Labels([("topology", t.topology), ("node", t.node ?? "")])
            r.gauge("quiver_topology_applied", "1 when the topology's last apply converged, else 0.", l, t.applied ? 1 : 0)
            r.gauge("quiver_topology_problem", "1 when the daemon could not fix something in the topology.", l, t.problem == nil ? 0 : 1)
            r.counter("quiver_drift_repairs_total", "Applies that repaired drift (something changed behind Quiver's back).", l, UInt64(t.repairs))
            r.counter("quiver_reconciles_total", "Full reconciles of the topology.", l, UInt64(t.reconciles))
            r.gauge("quiver_reconcile_duration_seconds", "How long the last full reconcile took.", l, t.lastReconcileSeconds ?? 0)
            if let s = t.lastRepairSeconds {
                r.gauge("quiver_drift_repair_duration_seconds", "From the first event of the last repair to the fabric proven converged.", l, s)
            }
        }
        for g in d.guests {
            let l = PrometheusText.Labels([("topology", g.topology), ("host", g.host)])
            r.gauge("quiver_guest_up", "1 when the guest's qemu is running.", l, g.state == "running" ? 1 : 0)
            r.counter("quiver_guest_restarts_total", "Times the daemon restarted the guest.", l, UInt64(g.restarts))
            for state in ["running", "stopped", "waiting to restart", "given up"] {
                r.gauge("quiver_guest_state", "The guest's state as the daemon supervises it (1 for the current one).",
                      l.adding("state", state.replacingOccurrences(of: " ", with: "_")), g.state == state ? 1 : 0)
            }
        }
    }
}
