import ArgumentParser
import Foundation
import QuiverDaemon
import QuiverFabric
import QuiverTopology

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Per-VNIC traffic, cap drops and protection drops (like dlstat).",
        discussion: """
        TARGET is a topology file, the name of an applied topology, or one VNIC's link name \
        (e.g. lab-web-net0); without it, every applied topology. With -i the counters are read \
        again every SECONDS and printed as rates over the interval (table) or as fresh totals \
        (json, prometheus).
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json, prometheus }

    @Argument(help: "Topology file or name, or a VNIC link name.") var target: String?
    @Option(name: .short, help: ArgumentHelp("Repeat every SECONDS.", valueName: "seconds")) var interval: Double?
    @Option(name: .short, help: ArgumentHelp("With -i: stop after COUNT reports (default: until interrupted).", valueName: "count"))
    var count: Int?
    @Option(name: .short, help: ArgumentHelp("Output format: table, json or prometheus.", valueName: "format")) var output: Format = .table
    @OptionGroup var fabric: FabricOptions

    func validate() throws {
        if let i = interval, !(i > 0 && i <= 3600) { throw ValidationError("-i takes seconds between 0 and 3600, got \(i)") }
        if let c = count, c < 1 { throw ValidationError("-c takes a count of at least 1, got \(c)") }
    }

    func run() throws {
        let f = try fabric.open()
        let (found, link) = try resolve()
        let topologies = try found.map { try fabric.place($0, on: f) }
        func read() throws -> [TopologyStats] {
            try topologies.map { t in
                var s = try f.stats(t)
                if let link { s.vnics = s.vnics.filter { $0.link == link } }
                return s
            }
        }
        var previous = try read()
        guard let interval else {
            print(try render(previous, rates: nil))
            return
        }
        var reports = 0
        while count.map({ reports < $0 }) ?? true {
            Thread.sleep(forTimeInterval: interval)
            let now = try read()
            print(try render(now, rates: output == .table ? (previous, interval) : nil))
            fflush(nil)
            previous = now
            reports += 1
        }
    }

    /// The topologies to read, and a single link to keep if TARGET named one.
    func resolve() throws -> ([Topology], String?) {
        guard let target else {
            return (try appliedTopologies(), nil)
        }
        if let file = try? topologyFile(target) { return ([try loadTopology(file)], nil) }
        for j in try Journal.all() {
            guard let file = j.file, let t = try? loadTopology(file) else { continue }
            if try DesiredFabric(t).vnics.contains(where: { $0.hostDevice.rawValue == target }) { return ([t], target) }
        }
        throw ValidationError("\"\(target)\" is no topology file, applied topology or VNIC link (see `quiver list` and `quiver show`)")
    }

    func render(_ stats: [TopologyStats], rates: ([TopologyStats], Double)?) throws -> String {
        switch output {
        case .json:
            return try renderJSON(stats)
        case .prometheus:
            return Metrics.render(stats)
        case .table:
            let rows = stats.flatMap(\.vnics)
            let before = rates.map { Dictionary($0.0.flatMap(\.vnics).map { ($0.link, $0) }, uniquingKeysWith: { a, _ in a }) }
            let secs = rates?.1 ?? 1
            var t = Table(rates == nil
                          ? ["VNIC", "TENANT", "HOST", "IPKTS", "RBYTES", "OPKTS", "OBYTES", "CAPDROPS", "SPOOFDROPS"]
                          : ["VNIC", "TENANT", "HOST", "IPKTS/s", "RBYTES/s", "OPKTS/s", "OBYTES/s", "CAPDROPS/s", "SPOOFDROPS/s"])
            for r in rows {
                let b = before?[r.link]
                func v(_ now: UInt64, _ then: UInt64?) -> String {
                    guard let then else { return String(now) }
                    return String(format: "%.0f", Double(now &- then) / secs)
                }
                let spoof = r.spoofDrops.keys.sorted().map { k in "\(k)=\(v(r.spoofDrops[k]!, b.map { $0.spoofDrops[k] ?? 0 }))" }
                t.add([r.vnic, r.tenant, r.host, v(r.ipackets, b?.ipackets), v(r.rbytes, b?.rbytes), v(r.opackets, b?.opackets),
                       v(r.obytes, b?.obytes),
                       "in=\(v(r.capDropsIn, b?.capDropsIn)) out=\(v(r.capDropsOut, b?.capDropsOut))",
                       spoof.isEmpty ? "--" : spoof.joined(separator: " ")])
            }
            var out = t.render()
            for s in stats where !s.isolationDrops.isEmpty {
                let topology = s.vnics.first?.topology ?? ""
                out += "\n" + s.isolationDrops.keys.sorted().map { "\(topology): frames kept from tenant \($0) by isolation (total): \(s.isolationDrops[$0]!)" }
                    .joined(separator: "\n")
            }
            return out
        }
    }
}
