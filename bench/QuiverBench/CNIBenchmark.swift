import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverTestSupport

/// bench/cni: the same chain (Debian's `bridge` + `host-local`), called as a runtime calls it,
/// ending once in Debian's `bandwidth` plugin and once in quiver-cni, with Kubernetes' default
/// burst (2³¹−1 bits) — interleaved per rate. Per rate: whole-run and steady-state wire rate over
/// the cap into the capped pod; then p99 RTT beside a saturating flow at 10M and 100M, and ADD/DEL
/// latency of the capping plugin.
enum CNIBenchmark {
    static let duration = 4.0
    static let warmup = 1.5
    /// The plugin under test: `QUIVER_CNI` (bench/cni sets the statically linked build, as it is
    /// installed), else the one beside this binary.
    static let cni = ProcessInfo.processInfo.environment["QUIVER_CNI"]
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("quiver-cni").path
    static let bandwidth = CNICall.pluginDirectory + "/bandwidth"

    struct Pods {
        let node = "qbc-node", pods = ["qbc-p1", "qbc-p2"], dataDir = "/run/quiver-bench-cni"
        var bridge: [[String: Any]] = []
        var bridgeConfig: [String: Any] {
            ["cniVersion": "1.0.0", "name": "qbc", "type": "bridge", "bridge": "qbcbr0", "isGateway": false, "ipMasq": false,
             "ipam": ["type": "host-local", "subnet": "10.223.0.0/24", "dataDir": dataDir]]
        }
        init() throws {
            for ns in [node] + pods { try runCommand(["ip", "netns", "add", ns]) }
            for (i, p) in pods.enumerated() {
                let c = try CNICall(CNICall.pluginDirectory + "/bridge", "ADD", node: node, pod: p, containerID: "bench\(i)", config: bridgeConfig)
                guard c.status == 0 else { throw BenchError("bridge ADD: \(c.stderr)") }
                bridge.append(c.result)
            }
        }
        func tearDown() {
            for (i, p) in pods.enumerated() { _ = try? CNICall(CNICall.pluginDirectory + "/bridge", "DEL", node: node, pod: p, containerID: "bench\(i)", config: bridgeConfig) }
            for ns in pods + [node] { try? runCommand(["ip", "netns", "del", ns]) }
            try? FileManager.default.removeItem(atPath: dataDir)
        }
    }

    static func config(_ type: String, rate: Bitrate, prev: [String: Any]) -> [String: Any] {
        let bw: [String: Any] = ["ingressRate": rate.bitsPerSecond, "ingressBurst": Int32.max, "egressRate": rate.bitsPerSecond, "egressBurst": Int32.max]
        return ["cniVersion": "1.0.0", "name": "qbc", "type": type, "runtimeConfig": ["bandwidth": bw], "prevResult": prev]
    }

    /// ADD of the capping plugin on pod 0; its time in seconds.
    static func add(_ plugin: String, _ p: Pods, rate: Bitrate) throws -> Double {
        let start = Date()
        let c = try CNICall(plugin, "ADD", node: p.node, pod: p.pods[0], containerID: "bench0", config: config(plugin == bandwidth ? "bandwidth" : "quiver-cni", rate: rate, prev: p.bridge[0]))
        guard c.status == 0 else { throw BenchError("\(plugin) ADD: \(c.stderr) \(c.result)") }
        return Date().timeIntervalSince(start)
    }

    static func del(_ plugin: String, _ p: Pods, rate: Bitrate) throws -> Double {
        let start = Date()
        let c = try CNICall(plugin, "DEL", node: p.node, pod: p.pods[0], containerID: "bench0", config: config(plugin == bandwidth ? "bandwidth" : "quiver-cni", rate: rate, prev: p.bridge[0]))
        guard c.status == 0 else { throw BenchError("\(plugin) DEL: \(c.stderr)") }
        let t = Date().timeIntervalSince(start)
        // The bandwidth plugin's DEL leaves its TBF and ingress qdisc on the host veth (the veth
        // normally goes with the pod): removed here, so the next ADD finds the device as a new
        // pod's would be.
        if plugin == bandwidth, let veth = CNICall.hostVeth(p.bridge[0]) {
            try? runCommand(["tc", "-n", p.node, "qdisc", "del", "dev", veth, "root"])
            try? runCommand(["tc", "-n", p.node, "qdisc", "del", "dev", veth, "ingress"])
        }
        return t
    }

    /// The qdisc that shapes traffic into pod 0: quiver-cni's `to` IFB, or the bandwidth
    /// plugin's TBF at the root of the host veth.
    static func shaper(_ plugin: String, _ p: Pods, handle: NetlinkHandle) throws -> QdiscCounter {
        let veth = try handle.link(named: try InterfaceName(validating: CNICall.hostVeth(p.bridge[0]) ?? ""))
        let dev = plugin == cni ? try handle.link(named: try InterfaceName(validating: "qct\(veth.index)")) : veth
        return QdiscCounter(handle: handle, ifindex: dev.index, parent: .root)
    }

    static func run(rates: [Bitrate]) throws {
        var p = try Pods()
        defer { p.tearDown() }
        let handle = try NetlinkHandle(namespace: .named(p.node))
        let into = try IPAddress(CNICall.address(p.bridge[0]))
        let podHandle = try NetlinkHandle(namespace: .named(p.pods[0]))
        var rows: [[String]] = []
        var addTimes: [String: [Double]] = [:], delTimes: [String: [Double]] = [:]
        for rate in rates {
            var row = [rate.description]
            for plugin in [bandwidth, cni] {
                addTimes[plugin, default: []].append(try add(plugin, p, rate: rate))
                let counter = try shaper(plugin, p, handle: handle)
                let device = CounterSampler(handle: podHandle)
                let start = device.sample()
                let mid = MidSample()
                let bulk = TCPBulk(from: .named(p.pods[1]), to: .named(p.pods[0]), address: into, port: 5800, duration: duration, warmup: warmup)
                let last = MidSample()
                Thread { Thread.sleep(forTimeInterval: duration - 0.1); last.set(counter.sample()) }.start()
                _ = try bulk.run(duringAt: warmup) { mid.set(counter.sample()) }
                let end = device.sample()
                let e = last.value ?? counter.sample(), m = mid.value ?? e
                let cap = Double(rate.bitsPerSecond)
                let whole = Double(end.bytes - start.bytes) * 8 / (end.time - start.time) / cap
                let wire = Double(e.bytes - m.bytes) * 8 / (e.time - m.time) / cap
                row += [String(format: "%.3f", whole), String(format: "%.3f", wire)]
                delTimes[plugin, default: []].append(try del(plugin, p, rate: rate))
            }
            print(row.joined(separator: "  "))
            rows.append(row)
        }
        print("")
        printTable(["cap", "bandwidth whole-run/cap", "wire/cap", "quiver-cni whole-run/cap", "wire/cap"], rows)
        func range(_ v: [Double]) -> String { String(format: "%.1f–%.1f ms", (v.min() ?? 0) * 1000, (v.max() ?? 0) * 1000) }
        print("\nADD: bandwidth \(range(addTimes[bandwidth] ?? [])), quiver-cni \(range(addTimes[cni] ?? []));  DEL: bandwidth \(range(delTimes[bandwidth] ?? [])), quiver-cni \(range(delTimes[cni] ?? []))")
        try latency(p, into: into)
    }

    /// bench/cni-latency: ADD then DEL of a 10M cap on one pod, `rounds` times, the plugins
    /// interleaved within each round: Debian's bandwidth plugin, then each quiver-cni build given
    /// (label=path). Every call goes through the same harness (a `Process` running `nsenter`, then
    /// the plugin), so the harness's own cost is in every column alike.
    static func runLatency(rounds: Int, builds: [(label: String, path: String)]) throws {
        var p = try Pods()
        defer { p.tearDown() }
        let plugins = [("bandwidth", bandwidth)] + builds
        var adds = [[Double]](repeating: [], count: plugins.count), dels = adds
        for _ in 0..<rounds {
            for (i, (_, path)) in plugins.enumerated() {
                adds[i].append(try add(path, p, rate: .mbit(10)))
                dels[i].append(try del(path, p, rate: .mbit(10)))
            }
        }
        func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
        func cell(_ v: [Double]) -> String { String(format: "%.1f–%.1f (%.1f)", v.min()! * 1000, v.max()! * 1000, median(v) * 1000) }
        let rows = plugins.enumerated().map { i, plugin in
            [plugin.0, cell(adds[i]), String(format: "%.2f", median(adds[i]) / median(adds[0])), cell(dels[i]), String(format: "%.2f", median(dels[i]) / median(dels[0]))]
        }
        print("\(rounds) rounds; ms, min–max (median); ratio of medians against the bandwidth plugin")
        printTable(["plugin", "ADD ms", "ADD ratio", "DEL ms", "DEL ratio"], rows)
    }

    /// UDP round trips into the capped pod beside a saturating TCP flow into it.
    static func latency(_ p: Pods, into: IPAddress) throws {
        let idle = try UDPRoundTrip(from: .named(p.pods[1]), to: .named(p.pods[0]), address: into, count: 100).run()
        var rows: [[String]] = []
        for rate in [Bitrate.mbit(10), .mbit(100)] {
            for plugin in [bandwidth, cni] {
                _ = try add(plugin, p, rate: rate)
                let bulk = TCPBulk(from: .named(p.pods[1]), to: .named(p.pods[0]), address: into, port: 5801, duration: 6, warmup: 1)
                let done = Outcomes(count: 1)
                Thread { done.set(0, try? bulk.run().bitsPerSecond) }.start()
                Thread.sleep(forTimeInterval: 1.5)
                let rtt = try UDPRoundTrip(from: .named(p.pods[1]), to: .named(p.pods[0]), address: into, count: 300, interval: 0.01).run()
                done.wait()
                _ = try del(plugin, p, rate: rate)
                rows.append([rate.description, plugin == cni ? "quiver-cni" : "bandwidth", String(format: "%.2f", rtt.percentile(99) * 1000),
                             String(format: "%.2f", (rtt.percentile(99) - idle.percentile(99)) * 1000), "\(rtt.lost)"])
            }
        }
        print(String(format: "\nidle p99 RTT %.2f ms", idle.percentile(99) * 1000))
        printTable(["cap", "plugin", "p99 ms", "added p99 ms", "lost"], rows)
    }
}
