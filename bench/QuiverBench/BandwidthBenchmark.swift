import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProbe

/// bench/bandwidth: configured cap vs measured rate, both directions, Quiver against the CNI
/// bandwidth plugin's layout made with `tc` in the same run (TBF on the host veth for traffic to
/// the endpoint; ingress + u32/mirred to an IFB with a TBF for traffic from it; burst as
/// Kubernetes passes it by default, 2^31-1 bits; latency 25 ms). Then tenant fairness and
/// round-trip times through a saturated cap.
enum BandwidthBenchmark {
    static let duration = 4.0
    static let warmup = 1.5

    struct Measure {
        var goodput: Double      // TCP payload after warm-up, bit/s
        var wire: Double         // shaping qdisc's byte counter after warm-up, bit/s
        var wholeRun: Double     // receiver's device counter from the first byte to the end, bit/s
    }

    static func run(rates: [Bitrate]) throws {
        let f = try ScratchFabric(endpoints: 3, prefix: "qbench")
        defer { f.tearDown() }
        let a = f.endpoints[0], b = f.endpoints[1]
        var rows: [[String]] = []
        for rate in rates {
            for outbound in [true, false] {
                let (src, dst) = outbound ? (a, b) : (b, a)
                try DeviceCap.set(a.hostDevice, maxbw: rate, on: f.handle)
                let ifbIndex = try f.handle.link(named: try InterfaceName(validating: (outbound ? "qf" : "qt") + "\(try f.handle.link(named: a.hostDevice).index)")).index
                let q = try measure(src, dst, shaper: QdiscCounter(handle: f.handle, ifindex: ifbIndex, parent: .root))
                try DeviceCap.clear(a.hostDevice, on: f.handle)
                try cniSetup(f, a.hostDevice, rate)
                let cniIndex = try f.handle.link(named: outbound ? "cni-ifb" : a.hostDevice).index
                let c = try measure(src, dst, shaper: QdiscCounter(handle: f.handle, ifindex: cniIndex, parent: .root))
                try cniTeardown(f, a.hostDevice)
                let cap = Double(rate.bitsPerSecond)
                rows.append([rate.description, outbound ? "outbound" : "inbound",
                             mb(q.goodput), ratio(q.wire / cap), ratio(q.wholeRun / cap),
                             mb(c.goodput), ratio(c.wire / cap), ratio(c.wholeRun / cap)])
                print(rows.last!.joined(separator: "  "))
            }
        }
        print("")
        printTable(["cap", "direction", "quiver goodput", "wire/cap", "whole-run/cap",
                    "cni goodput", "wire/cap", "whole-run/cap"], rows)
        try fairness(f)
        try latency(f)
    }

    /// Bulk TCP from src to dst. "Wire": the shaping qdisc's byte counter (the kernel counts every
    /// segment's headers there, as a wire would; a device counter counts a TSO super-packet's
    /// headers once) from the end of the warm-up to the end. "Whole run": dst's eth0 counter
    /// from before the first byte to the end, so an initial burst shows.
    static func measure(_ src: ScratchFabric.Endpoint, _ dst: ScratchFabric.Endpoint, shaper: QdiscCounter) throws -> Measure {
        let device = CounterSampler(handle: dst.handle)
        let start = device.sample()
        let bulk = TCPBulk(from: src.ns, to: dst.ns, address: dst.ip, port: 5500, duration: duration, warmup: warmup)
        let mid = MidSample()
        let last = MidSample()
        // The shaper's counter is read while the flow still runs: once after the warm-up, once
        // just before the sender stops (not after the run, which may include an idle tail).
        Thread {
            Thread.sleep(forTimeInterval: duration - 0.1)
            last.set(shaper.sample())
        }.start()
        let r = try bulk.run(duringAt: warmup) { mid.set(shaper.sample()) }
        let end = device.sample()
        let shaperEnd = last.value ?? shaper.sample()
        let m = mid.value ?? shaperEnd
        return Measure(goodput: r.bitsPerSecond,
                       wire: Double(shaperEnd.bytes - m.bytes) * 8 / (shaperEnd.time - m.time),
                       wholeRun: Double(end.bytes - start.bytes) * 8 / (end.time - start.time))
    }

    static func cniSetup(_ f: ScratchFabric, _ dev: InterfaceName, _ rate: Bitrate) throws {
        let ns = f.fabric.name!
        let tbf = ["tbf", "rate", "\(rate.bitsPerSecond)bit", "burst", "\(Int32.max / 8)", "latency", "25ms"]
        try runCommand(["tc", "-n", ns, "qdisc", "add", "dev", dev.rawValue, "root"] + tbf)
        try runCommand(["ip", "-n", ns, "link", "add", "cni-ifb", "type", "ifb"])
        try runCommand(["ip", "-n", ns, "link", "set", "cni-ifb", "up"])
        try runCommand(["tc", "-n", ns, "qdisc", "add", "dev", "cni-ifb", "root"] + tbf)
        try runCommand(["tc", "-n", ns, "qdisc", "add", "dev", dev.rawValue, "ingress"])
        try runCommand(["tc", "-n", ns, "filter", "add", "dev", dev.rawValue, "parent", "ffff:", "protocol", "all",
                        "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "cni-ifb"])
    }

    static func cniTeardown(_ f: ScratchFabric, _ dev: InterfaceName) throws {
        let ns = f.fabric.name!
        try runCommand(["tc", "-n", ns, "qdisc", "del", "dev", dev.rawValue, "root"])
        try runCommand(["tc", "-n", ns, "qdisc", "del", "dev", dev.rawValue, "ingress"])
        try runCommand(["ip", "-n", ns, "link", "del", "cni-ifb"])
    }

    /// Two VNICs of one tenant (60M, one with a 30M floor) sending at once.
    static func fairness(_ f: ScratchFabric) throws {
        let g = CapGroup(name: "acme", ifbFrom: "acme-f", ifbTo: "acme-t", maxbw: .mbit(60),
                         members: [CapMember(name: "a", device: f.endpoints[0].hostDevice, mac: f.endpoints[0].mac, floor: .mbit(30)),
                                   CapMember(name: "b", device: f.endpoints[1].hostDevice, mac: f.endpoints[1].mac)],
                         ownerTag: "quiver:bench/acme")
        try Shaper(handle: f.handle).apply(g)
        defer { try? Shaper(handle: f.handle).remove(g) }
        let sink = f.endpoints[2]
        let runs = [f.endpoints[0].ns, f.endpoints[1].ns].enumerated().map { i, ns in
            TCPBulk(from: ns, to: sink.ns, address: sink.ip, port: UInt16(5600 + i), duration: duration, warmup: warmup)
        }
        let out = Outcomes(count: 2)
        let threads = runs.enumerated().map { i, r in Thread { out.set(i, try? r.run().bitsPerSecond) } }
        threads.forEach { $0.start() }
        out.wait()
        let rates = out.values.map { $0 ?? 0 }
        print("\ntenant 60M, a: floor 30M, b: no floor, both saturating: a \(mb(rates[0])), b \(mb(rates[1])), sum \(mb(rates.reduce(0, +))) (\(ratio(rates.reduce(0, +) / 60e6)) of the cap)")
    }

    /// UDP round trips beside a saturating TCP flow through the cap, Quiver vs the CNI layout.
    static func latency(_ f: ScratchFabric) throws {
        let a = f.endpoints[0], b = f.endpoints[1]
        let idle = try UDPRoundTrip(from: a.ns, to: b.ns, address: b.ip, count: 100).run()
        print(String(format: "\nidle RTT p50 %.2f ms p99 %.2f ms", idle.percentile(50) * 1000, idle.percentile(99) * 1000))
        var rows: [[String]] = []
        for rate in [Bitrate.mbit(10), .mbit(100)] {
            for setup in ["quiver", "cni"] {
                if setup == "quiver" { try DeviceCap.set(a.hostDevice, maxbw: rate, on: f.handle) } else { try cniSetup(f, a.hostDevice, rate) }
                let bulk = TCPBulk(from: a.ns, to: b.ns, address: b.ip, port: 5700, duration: 6, warmup: 1)
                let done = Outcomes(count: 1)
                Thread { done.set(0, try? bulk.run().bitsPerSecond) }.start()
                Thread.sleep(forTimeInterval: 1.5)
                let rtt = try UDPRoundTrip(from: a.ns, to: b.ns, address: b.ip, count: 300, interval: 0.01).run()
                done.wait()
                if setup == "quiver" { try DeviceCap.clear(a.hostDevice, on: f.handle) } else { try cniTeardown(f, a.hostDevice) }
                rows.append([rate.description, setup, String(format: "%.2f", rtt.percentile(50) * 1000),
                             String(format: "%.2f", rtt.percentile(99) * 1000),
                             String(format: "%.2f", (rtt.percentile(99) - idle.percentile(99)) * 1000),
                             "\(rtt.lost)", mb(done.values[0] ?? 0)])
            }
        }
        printTable(["cap", "setup", "p50 ms", "p99 ms", "added p99 ms", "lost", "tcp goodput"], rows)
    }

    static func mb(_ bps: Double) -> String { String(format: "%.2fM", bps / 1e6) }
    static func ratio(_ r: Double) -> String { String(format: "%.3f", r) }
}

/// Receive-byte counter of an endpoint's eth0, with the time it was read.
struct CounterSampler: Sendable {
    let handle: NetlinkHandle
    func sample() -> (bytes: UInt64, time: Double) {
        let bytes = (try? handle.link(named: "eth0").statistics?.rxBytes) ?? 0
        return (bytes, Double(DispatchTime.now().uptimeNanoseconds) / 1e9)
    }
}

/// Byte counter of a device's root qdisc.
struct QdiscCounter: Sendable {
    let handle: NetlinkHandle
    let ifindex: Int32
    let parent: TCHandle
    func sample() -> (bytes: UInt64, time: Double) {
        let q = try? handle.qdiscs(ifindex: ifindex).first { $0.parent == parent }
        return (q?.statistics.bytes ?? 0, Double(DispatchTime.now().uptimeNanoseconds) / 1e9)
    }
}

final class MidSample: @unchecked Sendable {
    private let lock = NSLock()
    private var v: (bytes: UInt64, time: Double)?
    func set(_ x: (bytes: UInt64, time: Double)) { lock.lock(); v = x; lock.unlock() }
    var value: (bytes: UInt64, time: Double)? { lock.lock(); defer { lock.unlock() }; return v }
}

final class Outcomes: @unchecked Sendable {
    private let cond = NSCondition()
    private var results: [Double?]
    private var done = 0
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: Double?) { cond.lock(); results[i] = v; done += 1; cond.broadcast(); cond.unlock() }
    func wait() { cond.lock(); while done < results.count { cond.wait() }; cond.unlock() }
    var values: [Double?] { cond.lock(); defer { cond.unlock() }; return results }
}
