import Foundation
import QuiverKernel
import QuiverNetlink

/// quiver-bench SUITE [options] — see bench/README.md. Each suite prints a table.
@main
struct QuiverBench {
    static func main() throws {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let suite = args.first else {
            print("usage: quiver-bench links [N ...] | bandwidth [RATE ...] | cni [RATE ...] | cni-latency [ROUNDS [LABEL=PATH ...]] | apply [N ...] | isolation [N ...] | vm [ROUNDS] | vm-jail [ROUNDS] | vm-image [ROUNDS]")
            exit(2)
        }
        switch suite {
        case "links":
            let sizes = args.dropFirst().compactMap { Int($0) }
            try LinksBenchmark.run(sizes: sizes.isEmpty ? [100, 1000] : sizes)
        case "cni":
            let rates = try args.dropFirst().map { try Bitrate($0) }
            try CNIBenchmark.run(rates: rates.isEmpty ? [.mbit(1), .mbit(10), .mbit(100), .gbit(1)] : rates)
        case "cni-latency":
            // `quiver-bench cni-latency ROUNDS [LABEL=PATH ...]`: ADD/DEL latency, interleaved.
            let rounds = args.dropFirst().first.flatMap { Int($0) } ?? 20
            let builds = args.dropFirst(2).compactMap { a -> (String, String)? in
                let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }
            try CNIBenchmark.runLatency(rounds: rounds, builds: builds.isEmpty ? [("quiver-cni", CNIBenchmark.cni)] : builds)
        case "bandwidth":
            let rates = try args.dropFirst().map { try Bitrate($0) }
            try BandwidthBenchmark.run(rates: rates.isEmpty ? [.mbit(1), .mbit(5), .mbit(10), .mbit(50), .mbit(100), .gbit(1), .gbit(5)] : rates)
        case "apply":
            let sizes = args.dropFirst().compactMap { Int($0) }
            // QUIVER_BENCH_PER_COMMAND_LIMIT=0 skips the slow one-process-per-command baseline.
            let limit = ProcessInfo.processInfo.environment["QUIVER_BENCH_PER_COMMAND_LIMIT"].flatMap { Int($0) } ?? 1000
            try ApplyBenchmark.run(sizes: sizes.isEmpty ? [10, 100, 1000] : sizes, perCommandLimit: limit)
        case "apply-quiver":
            // Quiver alone, R rounds with phases: `quiver-bench apply-quiver N [R]` (for A/B runs).
            let n = args.dropFirst().first.flatMap { Int($0) } ?? 1000
            let rounds = args.dropFirst(2).first.flatMap { Int($0) } ?? 3
            try ApplyBenchmark.runQuiverOnly(n: n, rounds: rounds)
        case "read-cost":
            let names = NetworkNamespace.listNamed().filter { $0.hasPrefix(args.dropFirst().first ?? "perf-") }
            var handles: [NetlinkHandle] = []
            let open = try measure { handles = try NetlinkHandle.open(namespaces: names.map(NetworkNamespace.named)) }
            let links = try measure { for h in handles { _ = try h.links() } }
            let addrs = try measure { for h in handles { _ = try h.addresses() } }
            let routes = try measure { for h in handles { _ = try h.routes() } }
            print("\(names.count) namespaces: open \(ms(open)) ms, links \(ms(links)) ms, addresses \(ms(addrs)) ms, routes \(ms(routes)) ms")
        case "isolation-install":
            // Only the install times of `isolation`: `quiver-bench isolation-install N ...`.
            try IsolationBenchmark.installTimes(args.dropFirst().compactMap { Int($0) })
        case "isolation":
            let sizes = args.dropFirst().compactMap { Int($0) }
            try IsolationBenchmark.run(sizes: sizes.isEmpty ? [10, 100, 1000] : sizes)
        case "vm":
            try VMBenchmark.run(rounds: Int(args.dropFirst().first ?? "3") ?? 3)
        case "vm-jail":
            try VMBenchmark.jailThroughput(rounds: Int(args.dropFirst().first ?? "6") ?? 6)
        case "vm-image-caps":
            let caps = args.dropFirst().isEmpty ? ["10M", "20M", "30M", "50M"] : Array(args.dropFirst())
            try ImageBenchmark.caps(caps, samples: 3)
        case "vm-image":
            try ImageBenchmark.run(rounds: Int(args.dropFirst().first ?? "5") ?? 5)
        case "metrics":
            let a = Array(args.dropFirst())
            guard a.count >= 2 else { print("usage: quiver-bench metrics FILE FABRIC-NETNS [ROUNDS]"); exit(2) }
            try MetricsBenchmark.run(file: a[0], fabric: a[1], rounds: a.count > 2 ? Int(a[2]) ?? 10 : 10)
        case "links-variants":
            try LinksBenchmark.variants(n: Int(args.dropFirst().first ?? "1000") ?? 1000)
        default:
            print("unknown suite \(suite)")
            exit(2)
        }
    }
}
