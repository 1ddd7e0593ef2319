import Foundation
import QuiverBandwidth
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverTopology

/// bench/apply: apply / no-op re-apply / destroy of N VNICs (netns hosts, tenants of 100 with a
/// 1G aggregate, every VNIC capped at 100M), against the same objects made by one `ip`/`tc`
/// process per command and by `ip -batch` + `tc -batch`, in the same run. The fabric lives in a
/// namespace the benchmark creates. "one group del" is the kernel's own time to delete the same
/// objects in one `ip link del group` request (see `groupDeleteFloor`).
enum ApplyBenchmark {
    static func topology(_ name: String, _ n: Int) -> String {
        var s = "name: \(name)\nswitches:\n"
        let tenants = (n + 99) / 100
        for t in 0..<tenants { s += "  - name: s\(t)\n" }
        s += "tenants:\n"
        var i = 0
        for t in 0..<tenants {
            s += "  - name: t\(t)\n    maxbw: 1G\n    hosts:\n"
            for k in 0..<100 where i < n {
                s += "      - name: h\(i)\n        vnics:\n          - {name: n0, over: s\(t), ips: [10.\(100 + t).\(k / 250).\(k % 250 + 2)/16], maxbw: 100M}\n"
                i += 1
            }
        }
        return s
    }

    static func run(sizes: [Int], perCommandLimit: Int) throws {
        var rows: [[String]] = []
        for n in sizes {
            let t = try TopologyParser.parse(topology("b\(n)", n), file: "bench-\(n).yaml")
            let (apply, noop, destroy) = try quiver(t)
            let cmds = try commands(t)
            let batch = try baseline(t, cmds, batched: true)
            let per = n <= perCommandLimit ? try baseline(t, cmds, batched: false) : nil
            let floor = try groupDeleteFloor(t, cmds)
            func cell(_ v: Double?) -> String { v.map { String(format: "%.0f", $0 * 1000) } ?? "skipped" }
            func r(_ a: Double?, _ b: Double) -> String { a.map { String(format: "%.1fx", $0 / b) } ?? "--" }
            rows.append(["\(n)", "apply", cell(apply), cell(batch.create), cell(per?.create), "--", r(per?.create, apply), r(batch.create, apply),
                         String(format: "%.2f", apply * 1000 / Double(n))])
            rows.append(["\(n)", "no-op re-apply", cell(noop), "--", "--", "--", "--", "--", String(format: "%.3f", noop * 1000 / Double(n))])
            rows.append(["\(n)", "destroy", cell(destroy), cell(batch.delete), cell(per?.delete), cell(floor), r(per?.delete, destroy), r(batch.delete, destroy),
                         String(format: "%.2f", destroy * 1000 / Double(n))])
            print(rows.suffix(3).map { $0.joined(separator: "  ") }.joined(separator: "\n"))
            print("  (\(cmds.create.count) ip/tc commands to create, \(cmds.delete.count) to delete)")
        }
        print("")
        printTable(["VNICs", "operation", "quiver ms", "ip+tc -batch ms", "ip/tc per cmd ms", "one group del ms", "vs per cmd", "vs batch", "ms per VNIC"], rows)
    }

    static func runQuiverOnly(n: Int, rounds: Int) throws {
        let t = try TopologyParser.parse(topology("b\(n)", n), file: "bench-\(n).yaml")
        var rows: [[String]] = []
        for round in 1...rounds {
            let (apply, noop, destroy) = try quiver(t, showPhases: true)
            rows.append(["\(round)", String(format: "%.0f", apply * 1000), String(format: "%.0f", noop * 1000), String(format: "%.0f", destroy * 1000)])
            Thread.sleep(forTimeInterval: 3)
        }
        printTable(["round (\(n) VNICs)", "apply ms", "no-op ms", "destroy ms"], rows)
    }

    static func quiver(_ t: Topology, showPhases: Bool = ProcessInfo.processInfo.environment["QUIVER_BENCH_PHASES"] == "1") throws -> (Double, Double, Double) {
        try withBenchNamespace { ns in
            let fabric = try Fabric(fabric: ns)
            func show(_ what: String, _ phases: [(String, Double)]) {
                guard showPhases else { return }
                print("  \(what): " + phases.map { "\($0.0) \(String(format: "%.0f", $0.1))" }.joined(separator: ", "))
            }
            var applyResult: ApplyResult?
            let apply = try measure { applyResult = try fabric.apply(t) }
            show("apply", applyResult!.phases)
            var noopResult: ApplyResult?
            // QUIVER_BENCH_SETTLE=1: measure the no-op 5 s after the apply, once the new endpoints' start-up
            // traffic has died down (right after it, that traffic competes with the reads).
            if ProcessInfo.processInfo.environment["QUIVER_BENCH_SETTLE"] == "1" { Thread.sleep(forTimeInterval: 5) }
            var ru0 = rusage(), ru1 = rusage()
            getrusage(RUSAGE_SELF.rawValue, &ru0)
            let noop = try measure { noopResult = try fabric.apply(t) }
            getrusage(RUSAGE_SELF.rawValue, &ru1)
            func tv(_ a: timeval, _ b: timeval) -> Double { Double(b.tv_sec - a.tv_sec) * 1000 + Double(b.tv_usec - a.tv_usec) / 1000 }
            if showPhases { print("  no-op cpu: user \(tv(ru0.ru_utime, ru1.ru_utime)) ms, sys \(tv(ru0.ru_stime, ru1.ru_stime)) ms") }
            guard noopResult?.isNoOp == true else { throw BenchError("re-apply was not a no-op: \(noopResult!.summary)") }
            show("no-op", noopResult!.phases)
            var destroyResult: ApplyResult?
            let destroy = try measure { destroyResult = try fabric.destroy(topology: t.name) }
            show("destroy", destroyResult!.phases)
            Thread.sleep(forTimeInterval: 1)
            return (apply, noop, destroy)
        }
    }

    /// The same kernel objects Quiver makes, as iproute2 commands: `ip` lines (run with -n FABRIC
    /// unless they name their namespace) and `tc` lines (all in the fabric).
    struct Commands { var create: [(tool: String, line: String)]; var delete: [(tool: String, line: String)] }

    static func commands(_ t: Topology) throws -> Commands {
        let d = try DesiredFabric(t)
        let policy = ShapingPolicy()
        var c: [(String, String)] = []
        var del: [(String, String)] = []
        for b in d.bridges {
            c.append(("ip", "link add \(b.name) group \(d.group) type bridge stp_state 0"))
            c.append(("ip", "link set \(b.name) up"))
            del.append(("ip", "link del \(b.name)"))
        }
        for v in d.vnics {
            c.append(("ip", "netns add \(v.namespace)"))
            c.append(("ip", "link add \(v.hostDevice) group \(d.group) numtxqueues 1 numrxqueues 1 type veth peer name \(v.name) netns \(v.namespace) address \(v.mac!) numtxqueues 1 numrxqueues 1"))
            c.append(("ip", "link set \(v.hostDevice) master \(v.bridge) up"))
            c.append(("ipns", "\(v.namespace) link set lo up"))
            c.append(("ipns", "\(v.namespace) link set \(v.name) up"))
            for p in v.ips { c.append(("ipns", "\(v.namespace) addr add \(p) dev \(v.name)")) }
            del.append(("ip", "link del \(v.hostDevice)"))
            del.append(("ip", "netns del \(v.namespace)"))
        }
        for g in d.capGroups {
            for dir in Direction.allCases {
                let ifb = g.ifb(dir).rawValue
                c.append(("ip", "link add \(ifb) group \(d.group) type ifb"))
                c.append(("ip", "link set \(ifb) up"))
                del.append(("ip", "link del \(ifb)"))
                let layout = ShapingPlan.layout(g, dir, policy: policy)
                c.append(("tc", "qdisc add dev \(ifb) root handle 1: htb default 2"))
                for cl in layout.classes {
                    c.append(("tc", "class add dev \(ifb) parent \(cl.parent) classid \(cl.id) htb rate \(cl.htb.rate.bitsPerSecond)bit ceil \(cl.htb.ceil.bitsPerSecond)bit burst \(cl.htb.burst) cburst \(cl.htb.cburst) prio \(cl.htb.priority) quantum \(cl.htb.quantum)"))
                    switch cl.leafQueue {
                    case .tbf(let q)?:
                        c.append(("tc", "qdisc add dev \(ifb) parent \(cl.id) handle \(IFBLayout.leafHandle(for: cl.id)) tbf rate \(q.rate.bitsPerSecond)bit burst \(q.burst) limit \(q.limit)"))
                    case .bfifo(let limit)?:
                        c.append(("tc", "qdisc add dev \(ifb) parent \(cl.id) handle \(IFBLayout.leafHandle(for: cl.id)) bfifo limit \(limit)"))
                    default:
                        break
                    }
                }
                for f in layout.filters {
                    let proto = f.protocolNumber == 0x0800 ? "ip" : f.protocolNumber == 0x86DD ? "ipv6" : "all"
                    let keys = f.filter.keys.map { String(format: "match u32 0x%08x 0x%08x at %d", $0.value, $0.mask, $0.offset) }.joined(separator: " ")
                    c.append(("tc", "filter add dev \(ifb) parent 1: prio \(f.priority) protocol \(proto) u32 \(keys) flowid \(f.filter.classID!)"))
                }
            }
            // Each member's clsact bound to the group's shared blocks, then one redirect per block.
            for m in g.members {
                c.append(("tc", "qdisc add dev \(m.device) ingress_block \(g.ingressBlock) egress_block \(g.egressBlock) clsact"))
            }
            c.append(("tc", "filter add block \(g.ingressBlock) prio 193 protocol all u32 match u32 0 0 action mirred egress redirect dev \(g.ifbFrom)"))
            c.append(("tc", "filter add block \(g.egressBlock) prio 194 protocol all u32 match u32 0 0 action mirred egress redirect dev \(g.ifbTo)"))
        }
        return Commands(create: c, delete: del)
    }

    static func baseline(_ t: Topology, _ cmds: Commands, batched: Bool) throws -> (create: Double, delete: Double) {
        try withBenchNamespace { ns in
            let result = try baseline(t, cmds, batched: batched, in: ns)
            Thread.sleep(forTimeInterval: 1)
            return result
        }
    }

    static func baseline(_ t: Topology, _ cmds: Commands, batched: Bool, in ns: NetworkNamespace) throws -> (create: Double, delete: Double) {
        let fabric = ns.name!
        func argv(_ cmd: (tool: String, line: String)) -> [String] {
            let words = cmd.line.split(separator: " ").map(String.init)
            switch cmd.tool {
            case "ipns": return ["ip", "-n"] + words
            case "ip": return words.first == "netns" ? ["ip"] + words : ["ip", "-n", fabric] + words
            default: return ["tc", "-n", fabric] + words
            }
        }
        func runAll(_ list: [(tool: String, line: String)]) throws {
            if !batched {
                for cmd in list { try runCommand(argv(cmd)) }
                return
            }
            // `ip -batch` lines cannot name a namespace: one batch for the fabric (and
            // `netns add/del`), then one `ip -n HOST -batch` per host, then one `tc -batch`.
            // `netns add/del` from a plain `ip -batch`: under `ip -n`, ip runs in a private mount
            // namespace and the new namespace's bind mount would vanish with it.
            let netnsLines = list.filter { $0.tool == "ip" && $0.line.hasPrefix("netns ") }.map(\.line)
            let fabricLines = list.filter { $0.tool == "ip" && !$0.line.hasPrefix("netns ") }.map(\.line)
            // Each part timed: the namespaces, the fabric's links and the tc objects are one process
            // each, so their times are the kernel's own for those objects.
            var parts: [String] = []
            func timed(_ what: String, _ body: () throws -> Void) rethrows {
                parts.append("\(what) \(String(format: "%.0f", try measure(body) * 1000))")
            }
            if !netnsLines.isEmpty && !list.contains(where: { $0.line.hasPrefix("netns del") }) {
                try timed("namespaces (one ip -batch)") {
                    try runCommand(["ip", "-batch", "-"], stdin: netnsLines.joined(separator: "\n") + "\n")
                }
            }
            var perHost: [(String, [String])] = []
            for cmd in list where cmd.tool == "ipns" {
                let words = cmd.line.split(separator: " ", maxSplits: 1).map(String.init)
                if perHost.last?.0 == words[0] { perHost[perHost.count - 1].1.append(words[1]) } else { perHost.append((words[0], [words[1]])) }
            }
            let tcLines = list.filter { $0.tool == "tc" }.map(\.line)
            if !fabricLines.isEmpty {
                try timed("fabric links (one ip -batch, \(fabricLines.count) lines)") {
                    try runCommand(["ip", "-n", fabric, "-batch", "-"], stdin: fabricLines.joined(separator: "\n") + "\n")
                }
            }
            if !perHost.isEmpty {
                try timed("inside the hosts (one ip -batch each)") {
                    for (host, lines) in perHost { try runCommand(["ip", "-n", host, "-batch", "-"], stdin: lines.joined(separator: "\n") + "\n") }
                }
            }
            if !tcLines.isEmpty {
                try timed("caps (one tc -batch, \(tcLines.count) lines)") {
                    try runCommand(["tc", "-n", fabric, "-batch", "-"], stdin: tcLines.joined(separator: "\n") + "\n")
                }
            }
            if ProcessInfo.processInfo.environment["QUIVER_BENCH_PHASES"] == "1", !parts.isEmpty {
                print("  ip+tc -batch: " + parts.joined(separator: ", ") + " ms")
            }
            if list.contains(where: { $0.line.hasPrefix("netns del") }) {
                try runCommand(["ip", "-batch", "-"], stdin: netnsLines.joined(separator: "\n") + "\n")
            }
        }
        let create = try measure { try runAll(cmds.create) }
        let delete = try measure { try runAll(cmds.delete) }
        return (create, delete)
    }

    /// The kernel's own time to delete the same objects the fastest way iproute2 can: everything
    /// made again by the batches, then one `ip link del group` (every link, and with them the
    /// endpoints, qdiscs, classes and filters) and one `ip -batch` of `netns del`: the least
    /// iproute2 can ask of the kernel to remove these objects.
    static func groupDeleteFloor(_ t: Topology, _ cmds: Commands) throws -> Double {
        try withBenchNamespace { ns in
            let fabric = ns.name!
            _ = try baseline(t, Commands(create: cmds.create, delete: []), batched: true, in: ns)
            let netnsDel = cmds.delete.filter { $0.line.hasPrefix("netns del") }.map(\.line)
            let seconds = try measure {
                try runCommand(["ip", "-n", fabric, "link", "del", "group", "\(KernelNames(t.name).group)"])
                try runCommand(["ip", "-batch", "-"], stdin: netnsDel.joined(separator: "\n") + "\n")
            }
            Thread.sleep(forTimeInterval: 1)
            return seconds
        }
    }
}
