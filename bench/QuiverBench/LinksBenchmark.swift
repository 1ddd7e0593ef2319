import Foundation
import QuiverKernel
import QuiverNetlink

/// bench/links: create then delete N veth pairs and N taps three ways, in fresh namespaces:
/// Quiver (pipelined netlink batch, delete by link group), one `ip` process per command, and
/// `ip -batch`. Goals (issue 2): 1000 pairs created < 0.5 s, deleted < 0.3 s; ≥ 10× faster than
/// one process per command; not slower than `ip -batch`.
enum LinksBenchmark {
    static let group: UInt32 = 4711
    /// Both tools make the same devices: single-queue veths (as Quiver's fabric uses them).
    static let vethSettings = LinkSettings(group: group, txQueues: 1, rxQueues: 1)

    static func run(sizes: [Int]) throws {
        var rows: [[String]] = []
        for n in sizes {
            for kind in ["veth", "tap"] {
                let q = try quiver(kind, n)
                let b = try ipBatch(kind, n)
                let p = try ipPerCommand(kind, n)
                rows.append(["\(kind) ×\(n) create", ms(q.create), ms(b.create), ms(p.create), ratio(p.create, q.create), ratio(b.create, q.create)])
                rows.append(["\(kind) ×\(n) delete", ms(q.delete), ms(b.delete), ms(p.delete), ratio(p.delete, q.delete), ratio(b.delete, q.delete)])
            }
        }
        printTable(["operation", "quiver ms", "ip -batch ms", "ip/cmd ms", "vs ip/cmd", "vs ip -batch"], rows)
    }

    static func names(_ n: Int) -> [(InterfaceName, InterfaceName)] {
        (0..<n).map { i in (try! InterfaceName(validating: "bq\(i)a"), try! InterfaceName(validating: "bq\(i)b")) }
    }

    /// Quiver: all creations in one pipelined batch, deletion by group in one request.
    static func quiver(_ kind: String, _ n: Int) throws -> (create: Double, delete: Double) {
        try withBenchNamespace { ns in
            let h = try NetlinkHandle(namespace: ns)
            let pairs = names(n)
            var taps: [Tap] = []
            let create = try measure {
                if kind == "veth" {
                    var requests: [NetlinkRequest] = []
                    requests.reserveCapacity(n)
                    for (a, b) in pairs {
                        requests += LinkRequest.add(a, Veth(peer: b, peerSettings: vethSettings), vethSettings)
                    }
                    try h.perform(requests)
                } else {
                    // Taps come from /dev/net/tun (one thread in the namespace for all of them),
                    // then one netlink batch tags them with the group.
                    taps = try ns.run {
                        try pairs.map { (a, _) in try Tap.create(a, TapOptions(vnetHeader: true, persistent: true)) }
                    }
                    for t in taps { t.close() }
                    try h.perform(pairs.map { LinkRequest.change($0.0, LinkSettings(group: group)) })
                }
            }
            let expected = kind == "veth" ? 2 * n : n
            let made = try h.links().filter { $0.group == group }.count
            guard made == expected else { throw BenchError("quiver made \(made) links, expected \(expected)") }
            let delete = try measure { try h.deleteLinks(group: group) }
            Thread.sleep(forTimeInterval: 0.5) // let the kernel finish freeing before the next run
            guard try h.links().filter({ $0.group == group }).isEmpty else { throw BenchError("links left after delete") }
            return (create, delete)
        }
    }

    static func commands(_ kind: String, _ n: Int) -> (create: [String], delete: [String]) {
        let pairs = names(n)
        if kind == "veth" {
            return (pairs.map { "link add \($0.0) numtxqueues 1 numrxqueues 1 type veth peer name \($0.1) numtxqueues 1 numrxqueues 1" },
                    pairs.map { "link del \($0.0)" })
        }
        return (pairs.map { "tuntap add dev \($0.0) mode tap vnet_hdr" }, pairs.map { "link del \($0.0)" })
    }

    static func ipBatch(_ kind: String, _ n: Int) throws -> (create: Double, delete: Double) {
        try withBenchNamespace { ns in
            let c = commands(kind, n)
            let create = try measure { try runCommand(["ip", "-n", ns.name!, "-batch", "-"], stdin: c.create.joined(separator: "\n") + "\n") }
            let delete = try measure { try runCommand(["ip", "-n", ns.name!, "-batch", "-"], stdin: c.delete.joined(separator: "\n") + "\n") }
            return (create, delete)
        }
    }

    static func ipPerCommand(_ kind: String, _ n: Int) throws -> (create: Double, delete: Double) {
        try withBenchNamespace { ns in
            let c = commands(kind, n)
            let split = { (line: String) in ["ip", "-n", ns.name!] + line.split(separator: " ").map(String.init) }
            let create = try measure { for line in c.create { try runCommand(split(line)) } }
            let delete = try measure { for line in c.delete { try runCommand(split(line)) } }
            return (create, delete)
        }
    }

    /// Where the time goes in a veth batch: in-flight window and the group attribute.
    static func variants(n: Int) throws {
        for (window, grouped, queues) in [(1, false, false), (512, true, false), (512, true, true), (512, false, true)] {
            let t = try withBenchNamespace { ns -> Double in
                let h = try NetlinkHandle(namespace: ns)
                h.socket.maxInFlight = window
                var settings = grouped ? LinkSettings(group: group) : LinkSettings()
                if queues { settings.txQueues = 1; settings.rxQueues = 1 }
                let requests = names(n).flatMap { LinkRequest.add($0.0, Veth(peer: $0.1, peerSettings: settings), settings) }
                let t = try measure { try h.perform(requests) }
                try h.perform(names(n).map { LinkRequest.delete($0.0) })
                return t
            }
            print("window \(window) group \(grouped) single-queue \(queues): \(ms(t)) ms")
            Thread.sleep(forTimeInterval: 1)
        }
    }
}
