import CNetlink
import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import Testing

/// Privileged: cap groups applied to real devices, read back, cross-checked with `tc`, and
/// exercised with real traffic between namespaces.
extension Traffic {
@Suite struct CapGroupTests {
    func tenant(_ f: ScratchFabric, _ members: [(Int, Bitrate?, Bitrate?)], maxbw: Bitrate?) -> CapGroup {
        CapGroup(name: "acme", ifbFrom: "acme-f", ifbTo: "acme-t", maxbw: maxbw,
                 members: members.map { (i, maxbw, floor) in
                     let e = f.endpoints[i]
                     return CapMember(name: "vnic\(i + 1)", device: e.hostDevice, mac: e.mac, maxbw: maxbw, floor: floor)
                 },
                 ownerTag: "quiver:test/acme")
    }

    func tc(_ f: ScratchFabric, _ args: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/tc")
        p.arguments = ["-n", f.fabric.name!] + args.split(separator: " ").map(String.init)
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let d = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: d, as: UTF8.self)
    }

    @Test func applyReadBackReapplyNoOpAndRemove() throws {
        try withFabric(endpoints: 2) { f in
            let g = tenant(f, [(0, .mbit(50), .mbit(10)), (1, .mbit(30), nil)], maxbw: .mbit(60))
            let shaper = Shaper(handle: f.handle)
            let first = try shaper.apply(g)
            #expect(first.created > 10)

            // Read back through dumps.
            let usage = try shaper.status(g)
            let web = try #require(usage.first { $0.label == "vnic1" && $0.direction == .fromEndpoint })
            #expect(web.rate == .mbit(10))
            #expect(web.ceil == .mbit(50))
            let bulk = try #require(usage.first { $0.label == "vnic1/other" && $0.direction == .fromEndpoint })
            #expect(bulk.queueLimit == ShapingPolicy().queueLimit(for: .mbit(50)))
            #expect(usage.filter { $0.label == "aggregate" }.allSatisfy { $0.ceil == .mbit(60) })

            // Witness: tc sees the IFB trees and the redirects.
            let classes = try tc(f, "class show dev acme-f")
            #expect(classes.contains("class htb 1:1 root rate 60Mbit ceil 60Mbit"))
            #expect(classes.contains("class htb 1:100 parent 1:1 rate 10Mbit ceil 50Mbit"))
            #expect(classes.contains("class htb 1:101 parent 1:100 leaf 4101: prio 1 rate 9Mbit ceil 50Mbit"))
            #expect(classes.contains("class htb 1:102 parent 1:100 leaf 4102: prio 0 rate 1Mbit ceil 50Mbit"))
            let redirects = try tc(f, "filter show dev e1h ingress")
            #expect(redirects.contains("Egress Redirect to device acme-f"))
            #expect(try tc(f, "filter show dev e2h egress").contains("Egress Redirect to device acme-t"))
            let qd = try tc(f, "qdisc show dev acme-t")
            #expect(qd.contains("qdisc tbf 4101: parent 1:101"))

            // Same group again: nothing to do.
            let again = try shaper.apply(g)
            #expect(again.isNoOp, "re-apply changed \(again)")

            // Change a cap: the class changes in place.
            var g2 = g
            g2.members[1].maxbw = .mbit(20)
            let change = try shaper.apply(g2)
            #expect(change.created == 0 && change.deleted == 0)
            #expect(change.changed >= 2)
            #expect(try shaper.status(g2).first { $0.label == "vnic2" }?.ceil == .mbit(20))
            #expect(try shaper.apply(g2).isNoOp)

            // Remove: no IFB, no clsact left.
            try shaper.remove(g2)
            #expect(try f.handle.linkIfPresent(named: "acme-f") == nil)
            #expect(try f.handle.linkIfPresent(named: "acme-t") == nil)
            for e in f.endpoints {
                let idx = try f.handle.link(named: e.hostDevice).index
                #expect(try f.handle.qdiscs(ifindex: idx).allSatisfy(\.isKernelDefault))
            }
        }
    }

    @Test func foreignQdiscIsAConflictAndStaysPut() throws {
        try withFabric(endpoints: 1) { f in
            let e = f.endpoints[0]
            let idx = try f.handle.link(named: e.hostDevice).index
            // Someone else's root qdisc.
            try f.handle.perform(QdiscRequest.make(.add, ifindex: idx, device: e.hostDevice.rawValue,
                                                   handle: TCHandle(major: 0x77, minor: 0), parent: .root,
                                                   kind: .tbf(TBF(rate: .mbit(5), burst: 10_000, limit: 20_000))))
            let conflict = #expect(throws: OwnershipConflict.self) { try DeviceCap.set(e.hostDevice, maxbw: .mbit(10), on: f.handle) }
            #expect(conflict?.description.contains("a root tbf qdisc (handle 77:)") == true)
            #expect(try f.handle.qdiscs(ifindex: idx).contains { $0.handle == TCHandle(major: 0x77, minor: 0) })
            #expect(try f.handle.linkIfPresent(named: try InterfaceName(validating: "qf\(idx)")) == nil, "nothing created before the check")

            // Someone else's ingress qdisc, too.
            try f.handle.perform(QdiscRequest.delete(ifindex: idx, device: e.hostDevice.rawValue, handle: TCHandle(major: 0x77, minor: 0), parent: .root))
            try f.handle.perform(QdiscRequest.make(.add, ifindex: idx, device: e.hostDevice.rawValue, handle: .ingressHandle, parent: .ingressParent, kind: .ingress))
            let c2 = #expect(throws: OwnershipConflict.self) { try DeviceCap.set(e.hostDevice, maxbw: .mbit(10), on: f.handle) }
            #expect(c2?.description.contains("an ingress qdisc") == true)
            #expect(try f.handle.qdiscs(ifindex: idx).contains { $0.kind == .ingress })
            #expect(try tc(f, "qdisc show dev \(e.hostDevice)").contains("qdisc ingress ffff:"))
        }
    }

    @Test func tenantCapIsSharedAndFloorsHold() throws {
        try withFabric(endpoints: 4) { f in
            // Three VNICs of one tenant send to a fourth endpoint (not in the tenant) at once.
            let g = tenant(f, [(0, nil, .mbit(30)), (1, nil, nil), (2, nil, nil)], maxbw: .mbit(60))
            try Shaper(handle: f.handle).apply(g)
            let sink = f.endpoints[3]
            let senders = f.endpoints[0..<3].map(\.ns)
            let results = try concurrently((0..<3).map { i in
                { try TCPBulk(from: senders[i], to: sink.ns, address: sink.ip, port: UInt16(5301 + i), duration: 5, warmup: 2).run() }
            })
            let rates = results.map(\.bitsPerSecond)
            let sum = rates.reduce(0, +)
            print("tenant 60M, floor 30M on vnic1: \(rates.map(mbit)) sum \(mbit(sum))")
            let allCompleted = results.allSatisfy { $0.completed }
            #expect(allCompleted)
            #expect(abs(sum / (60e6 * 0.956) - 1) <= 0.10, "sum \(mbit(sum))")
            #expect(rates[0] >= 27e6, "vnic1 has a 30M floor: \(mbit(rates[0]))")
        }
    }

    @Test func oneTenantCapAcrossTwoSwitches() throws {
        try withFabric(endpoints: 4) { f in
            // vnic1 → sink3 on br0, vnic2 → sink4 on a second bridge: one 30M cap covers both.
            try f.handle.addLink("br1", Bridge(stp: false), LinkSettings(up: true))
            let br1 = try f.handle.link(named: "br1").index
            for i in [1, 3] { try f.handle.setLink(f.endpoints[i].hostDevice, LinkSettings(masterIndex: br1)) }
            let g = tenant(f, [(0, nil, nil), (1, nil, nil)], maxbw: .mbit(30))
            try Shaper(handle: f.handle).apply(g)
            let e = f.endpoints
            let flows = [TCPBulk(from: e[0].ns, to: e[2].ns, address: e[2].ip, port: 5311, duration: 5, warmup: 2),
                         TCPBulk(from: e[1].ns, to: e[3].ns, address: e[3].ip, port: 5312, duration: 5, warmup: 2)]
            let results = try concurrently(flows.map { flow in { try flow.run() } })
            let sum = results.map(\.bitsPerSecond).reduce(0, +)
            print("tenant 30M over two switches: \(results.map { mbit($0.bitsPerSecond) }) sum \(mbit(sum))")
            #expect(abs(sum / (30e6 * 0.956) - 1) <= 0.10)
            #expect(results.allSatisfy { $0.bitsPerSecond > 10e6 }, "both share it")
        }
    }

    @Test func liveChangeFollowsWithinASecondAndTheConnectionSurvives() throws {
        try withFabric(endpoints: 2) { f in
            let a = f.endpoints[0], b = f.endpoints[1]
            try DeviceCap.set(a.hostDevice, maxbw: .mbit(50), on: f.handle)
            let handle = f.handle
            let r = try TCPBulk(from: a.ns, to: b.ns, address: b.ip, duration: 6, warmup: 1).run(duringAt: 3) {
                do { try DeviceCap.set(a.hostDevice, maxbw: .mbit(10), on: handle) } catch { Issue.record("change failed: \(error)") }
            }
            let before = r.rate(from: 1, to: 2.9)
            let after = r.rate(from: 4.1, to: 6)
            print("live change 50M→10M: before \(mbit(before)), after \(mbit(after))")
            #expect(r.completed, "the connection survived the change")
            #expect(abs(before / (50e6 * 0.956) - 1) <= 0.10)
            #expect(abs(after / (10e6 * 0.956) - 1) <= 0.10, "rate 1 s after the change: \(mbit(after))")
        }
    }

    @Test func zeroBlocksAndAFlowCapCapsOnlyItsPort() throws {
        try withFabric(endpoints: 2) { f in
            let a = f.endpoints[0], b = f.endpoints[1]
            // A flow on a's VNIC: traffic it sends to TCP port 5401 is capped at 5M; the rest at 40M.
            let flow = FlowCap(name: "bulk", transport: .tcp, remotePort: 5401, maxbw: .mbit(5))
            try DeviceCap.set(a.hostDevice, maxbw: .mbit(40), flows: [flow], on: f.handle)
            let capped = try TCPBulk(from: a.ns, to: b.ns, address: b.ip, port: 5401, duration: 3.5, warmup: 1.5).run()
            let other = try TCPBulk(from: a.ns, to: b.ns, address: b.ip, port: 5402, duration: 3.5, warmup: 1.5).run()
            print("flow cap 5M on port 5401: \(mbit(capped.bitsPerSecond)); port 5402 (VNIC cap 40M): \(mbit(other.bitsPerSecond))")
            #expect(abs(capped.bitsPerSecond / (5e6 * 0.956) - 1) <= 0.10)
            #expect(abs(other.bitsPerSecond / (40e6 * 0.956) - 1) <= 0.10)

            // maxbw 0: nothing gets through, either way; the drops are counted.
            try DeviceCap.set(a.hostDevice, maxbw: Bitrate(bitsPerSecond: 0), on: f.handle)
            let probe = TCPBulk(from: a.ns, to: b.ns, address: b.ip, port: 5403, duration: 1, warmup: 0)
            let blocked = #expect(throws: SystemCallError.self) { _ = try probe.run() }
            #expect(blocked?.call == "connect")
            let g = try #require(try DeviceCap.current(a.hostDevice, on: f.handle))
            let drops = try Shaper(handle: f.handle).status(g).filter { $0.label == a.hostDevice.rawValue }.map(\.statistics.drops).reduce(0, +)
            #expect(drops > 0)
            #expect(try DeviceCap.clear(a.hostDevice, on: f.handle))
            #expect(try !DeviceCap.clear(a.hostDevice, on: f.handle))
        }
    }
}
}

/// Runs closures on their own threads and returns their results in order.
func concurrently<T: Sendable>(_ jobs: [@Sendable () throws -> T]) throws -> [T] {
    let results = Results<T>(count: jobs.count)
    let group = DispatchGroup()
    for (i, job) in jobs.enumerated() {
        group.enter()
        Thread {
            results.set(i, Result { try job() })
            group.leave()
        }.start()
    }
    group.wait()
    return try results.all().map { try $0!.get() }
}

final class Results<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Result<T, Error>?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); values[i] = r; lock.unlock() }
    func all() -> [Result<T, Error>?] { lock.lock(); defer { lock.unlock() }; return values }
}
