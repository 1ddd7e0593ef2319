import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverProtection

/// bench/isolation: what isolation and protection cost on the data path (TCP throughput and UDP
/// round trips between two endpoints of one tenant, rules off vs on), and how fast the rules for
/// N VNICs go in: Quiver's one nfnetlink transaction vs `nft -f` of the same ruleset (the text
/// `nft list table` prints for Quiver's table), same run.
enum IsolationBenchmark {
    /// `ipv6`: whether the synthetic VNICs speak IPv6 (they then get the neighbour discovery
    /// checks; an IPv4-only VNIC's IPv6 is one drop rule).
    static func ports(_ n: Int, real: [ScratchFabric.Endpoint] = [], ipv6: Bool = true) -> [ProtectedPort] {
        var out = real.map {
            ProtectedPort(device: $0.hostDevice.rawValue, tenant: "a", mac: $0.mac, protection: [.macNospoof, .ipNospoof, .restricted],
                          allowed: [try! IPPrefix(address: $0.ip, length: 32)])
        }
        var i = 0
        while out.count < n {
            out.append(ProtectedPort(device: "bench\(i)", tenant: "t\(i % 50)",
                                     mac: try! MACAddress(bytes: [2, 0x42, 0, 0, UInt8(i >> 8), UInt8(i & 0xff)]),
                                     protection: [.macNospoof, .ipNospoof, .restricted],
                                     allowed: [try! IPPrefix("10.\(100 + i / 65536).\((i / 256) % 256).\(i % 256)/32")], ipv6: ipv6))
            i += 1
        }
        return out
    }

    static func run(sizes: [Int]) throws {
        try installTimes(sizes)
        try dataPath(rounds: Int(ProcessInfo.processInfo.environment["QUIVER_BENCH_ROUNDS"] ?? "9") ?? 9)
    }

    static func installTimes(_ sizes: [Int]) throws {
        var rows: [[String]] = []
        for n in sizes {
          for ipv6 in [true, false] {
            try withBenchNamespace { ns in
                let fw = try Firewall(namespace: ns)
                let ruleset = Ruleset(table: "quiver-bench", ownerTag: "quiver:bench/", ports: ports(n, ipv6: ipv6))
                var build = 0.0, install = 0.0, noop = 0.0, nftTime = 0.0
                var requests = 0
                let reps = 3
                let file = "/tmp/quiver-bench-\(getpid()).nft"
                defer { unlink(file) }
                for _ in 0..<reps {
                    build += measure { requests = ruleset.transaction().count }
                    install += try measure { try fw.install(ruleset) }
                    noop += try measure { _ = try fw.install(ruleset) }
                    try runCommand(["sh", "-c", "ip netns exec \(ns.name!) nft list table bridge quiver-bench > \(file)"])
                    _ = try fw.remove(table: "quiver-bench", ownerTag: "quiver:bench/")
                    // nft cannot read back its own listing of the shared neighbour discovery chain
                    // (a raw payload in a concatenation against a typed set): no baseline then.
                    do {
                        nftTime += try measure { try runCommand(["ip", "netns", "exec", ns.name!, "nft", "-f", file]) }
                        try runCommand(["ip", "netns", "exec", ns.name!, "nft", "delete", "table", "bridge", "quiver-bench"])
                    } catch { nftTime = .nan }
                }
                let d = Double(reps)
                rows.append([String(n), ipv6 ? "IPv4+IPv6" : "IPv4 only", String(requests), ms(build / d), ms(install / d), ms(noop / d),
                             nftTime.isNaN ? "--" : ms(nftTime / d), nftTime.isNaN ? "--" : ratio(nftTime, install),
                             String(format: "%.1f", install / d / Double(n) * 1e6)])
            }
          }
        }
        print("rules for N VNICs (mean of 3; one transaction each)")
        printTable(["VNICs", "VNICs speak", "requests", "build ms", "quiver install ms", "no-op ms", "nft -f ms", "nft/quiver", "µs/VNIC"], rows)
        print("")
    }

    static func dataPath(rounds: Int) throws {
        let f = try ScratchFabric(endpoints: 2, prefix: "qbench")
        defer { f.tearDown() }
        let a = f.endpoints[0], b = f.endpoints[1]
        let fw = try Firewall(namespace: f.fabric)
        let small = Ruleset(table: "quiver-bench", ownerTag: "quiver:bench/", ports: ports(2, real: f.endpoints))
        let large = Ruleset(table: "quiver-bench", ownerTag: "quiver:bench/", ports: ports(1000, real: f.endpoints))
        var tput: [String: [Double]] = [:], p50: [String: [Double]] = [:], p99: [String: [Double]] = [:]
        let modes: [(String, Ruleset?)] = [("off", nil), ("on, 2 VNICs", small), ("on, 1000 VNICs", large)]
        for round in 0..<rounds {
            for (name, rules) in modes {
                if let rules { try fw.install(rules) } else { _ = try fw.remove(table: "quiver-bench", ownerTag: "quiver:bench/") }
                let t = try TCPBulk(from: a.ns, to: b.ns, address: b.ip, port: UInt16(5301 + round), duration: 4, warmup: 1).run()
                tput[name, default: []].append(t.bitsPerSecond)
                let r = try UDPRoundTrip(from: a.ns, to: b.ns, address: b.ip, port: UInt16(7301 + round), count: 1000, interval: 0.001).run()
                p50[name, default: []].append(r.percentile(50))
                p99[name, default: []].append(r.percentile(99))
                print("round \(round + 1) \(name): \(String(format: "%.2f", t.bitsPerSecond / 1e9)) Gbit/s, rtt p50 \(us(r.percentile(50))) µs p99 \(us(r.percentile(99))) µs")
            }
        }
        _ = try fw.remove(table: "quiver-bench", ownerTag: "quiver:bench/")
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let base = median(tput["off"]!)
        var rows: [[String]] = []
        for (name, _) in modes {
            let m = median(tput[name]!)
            rows.append([name, String(format: "%.2f", m / 1e9), String(format: "%+.1f%%", (m / base - 1) * 100),
                         us(median(p50[name]!)), us(median(p99[name]!))])
        }
        print("")
        print("same-tenant TCP throughput and UDP round trip, rules off vs on (median of \(rounds) rounds)")
        printTable(["rules", "TCP Gbit/s", "vs off", "rtt p50 µs", "rtt p99 µs"], rows)
    }

    static func us(_ s: Double) -> String { String(format: "%.0f", s * 1e6) }
}
