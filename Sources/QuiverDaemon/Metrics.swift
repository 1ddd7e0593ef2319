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
        var text = PrometheusText()
        for s in stats { add(s, to: &text) }
        if let daemon { add(daemon, to: &text) }
        return text.render()
    }

    private static func add(_ s: TopologyStats, to r: inout PrometheusText) {
        for v in s.vnics {
            let l = PrometheusText.Labels([("topology", v.topology), ("tenant", v.tenant), ("host", v.host), ("vnic", v.vnic)])
            r.counter("quiver_vnic_receive_packets_total", "Packets the VNIC received.", l, v.ipackets)
            r.counter("quiver_vnic_receive_bytes_total", "Bytes the VNIC received.", l, v.rbytes)
            r.counter("quiver_vnic_transmit_packets_total", "Packets the VNIC sent.", l, v.opackets)
            r.counter("quiver_vnic_transmit_bytes_total", "Bytes the VNIC sent.", l, v.obytes)
            r.counter("quiver_vnic_cap_drops_total", "Packets dropped by bandwidth caps.", l.adding("direction", "in"), v.capDropsIn)
            r.counter("quiver_vnic_cap_drops_total", "Packets dropped by bandwidth caps.", l.adding("direction", "out"), v.capDropsOut)
            for (k, n) in v.spoofDrops.sorted(by: { $0.key < $1.key }) {
                r.counter("quiver_vnic_protection_drops_total", "Frames dropped by link protection, by kind.", l.adding("kind", k), n)
            }
        }
        let topology = s.vnics.first?.topology ?? ""
        for c in s.capClasses {
            // "in": towards the VNIC (what it receives), as for the VNIC counters.
            let l = PrometheusText.Labels([("topology", topology), ("tenant", c.tenant), ("class", c.usage.label), ("direction", c.usage.direction == .toEndpoint ? "in" : "out")])
            let st = c.usage.statistics
            r.counter("quiver_cap_class_sent_bytes_total", "Bytes a cap class let through.", l, st.bytes)
            r.counter("quiver_cap_class_drops_total", "Packets a cap class dropped.", l, UInt64(st.drops))
            r.counter("quiver_cap_class_overlimits_total", "Times a cap class was over its rate.", l, UInt64(st.overlimits))
            r.gauge("quiver_cap_class_backlog_bytes", "Bytes queued in a cap class now.", l, Double(st.backlog))
            r.gauge("quiver_cap_class_backlog_packets", "Packets queued in a cap class now.", l, Double(st.queueLength))
            r.gauge("quiver_cap_ceil_bytes_per_second", "A cap class's configured ceiling (maxbw).", l, Double(c.usage.ceil.bitsPerSecond) / 8)
            r.gauge("quiver_cap_floor_bytes_per_second", "A cap class's configured guaranteed rate (floor).", l, Double(c.usage.rate.bitsPerSecond) / 8)
        }
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
