import Foundation
import QuiverDaemon
import QuiverFabric
import QuiverNetlink
import QuiverTopology

/// Where a `/metrics` scrape's time goes, on a topology already applied in a fabric namespace
/// (bench/daemon makes one): the link dump alone, a whole counter read (links, tc classes,
/// nftables counters), the exposition text of that read, and the two together as the daemon's
/// endpoint does them — each over ROUNDS rounds, min–max (median) in ms.
/// `quiver-bench metrics FILE FABRIC-NETNS [ROUNDS]`.
enum MetricsBenchmark {
    static func run(file: String, fabric: String, rounds: Int) throws {
        let f = try Fabric(fabric: .named(fabric))
        let t = try TopologyParser.load(path: file)
        var setup = 0.0, links: [Double] = [], reads: [Double] = [], renders: [Double] = [], scrapes: [Double] = []
        var reader: StatsReader?
        setup = try measure { reader = try StatsReader(f, t) }
        guard let reader else { return }
        var size = 0
        for _ in 0..<rounds {
            links.append(try measure { _ = try f.handle.links() })
            var stats: TopologyStats?
            reads.append(try measure { stats = try reader.read(queueLimits: false) })
            renders.append(measure { size = Metrics.exposition([stats!]).count })
            scrapes.append(try measure { _ = Metrics.exposition([try reader.read(queueLimits: false)]).count })
        }
        func row(_ name: String, _ xs: [Double]) {
            let s = xs.map { $0 * 1000 }.sorted()
            print(name.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: " %6.1f–%6.1f (%6.1f)", s.first ?? 0, s.last ?? 0, s[s.count / 2]))
        }
        print("# quiver-bench metrics \(t.name): \(rounds) rounds, \(size) bytes of text; reader set-up \(String(format: "%.1f", setup * 1000)) ms (once per topology)")
        print("PHASE                              ms min–max (median)")
        row("link dump", links)
        row("counter read (links, tc, nft)", reads)
        row("exposition text", renders)
        row("read + text (what a scrape does)", scrapes)
    }
}
