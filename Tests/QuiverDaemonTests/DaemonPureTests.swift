import CNetlink
import Foundation
@testable import QuiverDaemon
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverTopology
import QuiverVM
import Testing

/// The daemon's pure parts: restart decisions, attribution of notifications, addresses, logs.
@Suite struct GuestSupervisionTests {
    let limits = RestartLimits(initialBackoff: 1, maxBackoff: 8, limit: 3, window: 60)
    let t0 = Date(timeIntervalSince1970: 1_000_000)

    @Test func eachPolicyAndExit() {
        func after(_ p: Topology.RestartPolicy, _ e: GuestExit) -> GuestWatch {
            var g = GuestWatch(topology: "t", host: "g", policy: p)
            g.gone(e, now: t0, limits: limits)
            return g
        }
        #expect(after(.onFailure, .died).state == "waiting to restart")
        #expect(after(.onFailure, .poweredOff).state == "stopped")
        #expect(after(.always, .poweredOff).state == "waiting to restart")
        #expect(after(.never, .died).state == "stopped")
        #expect(after(.never, .died).reason == "restart: never")
        // An operator's stop holds for every policy.
        for p in Topology.RestartPolicy.allCases { #expect(after(p, .stoppedByQuiver).state == "stopped") }
    }

    @Test func backoffDoublesThenGivesUp() {
        var g = GuestWatch(topology: "t", host: "g", policy: .onFailure)
        var now = t0
        var delays: [Double] = []
        for _ in 0..<3 {
            g.gone(.died, now: now, limits: limits)
            delays.append(g.nextRestart!.timeIntervalSince(now))
            #expect(!g.mayStart(now: now))
            now = g.nextRestart!
            #expect(g.mayStart(now: now))
            g.restarted(now: now)
        }
        #expect(delays == [1, 2, 4])
        g.gone(.died, now: now, limits: limits)
        #expect(g.state == "given up")
        #expect(g.reason == "3 restarts tried in 60 s and gone again (qemu died (killed, crashed or exited without a guest power-off)): left stopped")
        #expect(!g.mayStart(now: now.addingTimeInterval(3600)))
        #expect(g.restarts == 3)
    }

    /// A restart whose qemu never starts counts against the limit, not as a restart.
    @Test func failedStartsGiveUpAtTheLimit() {
        var g = GuestWatch(topology: "t", host: "g", policy: .onFailure)
        g.gone(.died, now: t0, limits: limits)
        var now = g.nextRestart!
        g.startFailed(now: now, limits: limits)
        #expect(g.state == "waiting to restart" && g.lastExit == .failedToStart)
        #expect(g.nextRestart == now.addingTimeInterval(2))
        now = g.nextRestart!
        g.startFailed(now: now, limits: limits)
        now = g.nextRestart!
        g.startFailed(now: now, limits: limits)
        #expect(g.state == "given up")
        #expect(g.reason == "3 restarts tried in 60 s and gone again (qemu failed to start): left stopped")
        #expect(g.restarts == 0)
    }

    @Test func restartsOutsideTheWindowDoNotCount() {
        var g = GuestWatch(topology: "t", host: "g", policy: .always)
        for i in 0..<10 {
            let now = t0.addingTimeInterval(Double(i) * 100)  // one every 100 s, window 60 s
            g.gone(.died, now: now, limits: limits)
            #expect(g.state == "waiting to restart")
            #expect(g.nextRestart == now.addingTimeInterval(1))
            g.restarted(now: now)
        }
    }
}

@Suite struct MetricsAddressTests {
    @Test func accepted() throws {
        #expect(try MetricsAddress(parsing: "127.0.0.1:9464") == MetricsAddress(host: "127.0.0.1", port: 9464))
        #expect(try MetricsAddress(parsing: "[::1]:0").host == "::1")
        #expect(try MetricsAddress(parsing: "[::1]:9464").isLoopback)
        #expect(try !MetricsAddress(parsing: "192.0.2.1:80").isLoopback)
    }

    @Test(arguments: ["localhost:9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:9464x", "::1:9464",
                      "[::1]9464", "[::1", "http://127.0.0.1:9464", "127.0.0.1:0x10", "", "1.2.3.4:1234567"])
    func refused(_ text: String) {
        #expect(throws: PersistentStoreError.self) { try MetricsAddress(parsing: text) }
    }
}

@Suite struct AttributionTests {
    static let yaml = """
    name: at
    switches: [{name: sw0}]
    tenants:
      - name: a
        hosts:
          - {name: web, vnics: [{name: net0, over: sw0, ips: [10.1.0.1/24], maxbw: 10M}]}
    """

    func watched() throws -> WatchedTopology {
        let t = try TopologyParser.parse(Self.yaml, file: "at.yaml")
        return WatchedTopology(key: "at", fabricNamespace: nil, desired: try DesiredFabric(t))
    }

    /// A `tcmsg` notification for link `index`.
    func tc(_ type: Int32, index: Int32) -> ReceivedMessage {
        var header = tcmsg()
        header.tcm_ifindex = index
        let bytes = withUnsafeBytes(of: header) { Array($0) }
        return ReceivedMessage(type: UInt16(type), flags: 0, sequence: 0, portID: 0, payload: bytes)
    }

    @Test func qdiscOfAnOwnedLinkOnlyOnceItsIndexIsKnown() throws {
        let w = try watched()
        let mine = Link(name: "at-a-f", index: 7, group: w.group)
        let foreign = Link(name: "eth9", index: 9)
        var a = FabricAttribution(links: [mine, foreign])
        #expect(a.events(tc(Int32(RTM_DELQDISC), index: 7), watched: [w]) == [DriftEvent(key: "at", what: "qdisc deleted on at-a-f")])
        #expect(a.events(tc(Int32(RTM_NEWQDISC), index: 9), watched: [w]).isEmpty, "a foreign link's qdisc is nobody's drift")
        #expect(a.events(tc(Int32(RTM_DELQDISC), index: 42), watched: [w]).isEmpty, "an unknown index")
    }

    @Test func nftablesByTableName() throws {
        let w = try watched()
        func message(table: String) -> ReceivedMessage {
            var m = NetlinkMessage(type: UInt16(NFNL_SUBSYS_NFTABLES << 8) | UInt16(NFT_MSG_DELTABLE.rawValue), flags: 0)
            m.append(header: nfgenmsg(nfgen_family: UInt8(NFPROTO_BRIDGE), version: UInt8(NFNETLINK_V0), res_id: 0))
            m.put(1, string: table)
            return ReceivedMessage(type: UInt16(NFNL_SUBSYS_NFTABLES << 8) | UInt16(NFT_MSG_DELTABLE.rawValue), flags: 0, sequence: 0, portID: 0, payload: Array(m.bytes.dropFirst(16)))
        }
        #expect(FabricAttribution.nftables(message(table: "quiver-at"), watched: [w]).map(\.what) == ["nftables table deleted in quiver-at"])
        #expect(FabricAttribution.nftables(message(table: "quiver-atx"), watched: [w]).isEmpty)
        #expect(FabricAttribution.nftables(message(table: "filter"), watched: [w]).isEmpty)
    }
}

@Suite struct LogLineTests {
    @Test func valuesStayOnOneLine() {
        #expect(LineLogHandler.quoted("plain") == "plain")
        #expect(LineLogHandler.quoted("two words") == "\"two words\"")
        #expect(LineLogHandler.quoted("a\nb\"c") == "\"a\\nb\\\"c\"")
        #expect(LineLogHandler.quoted("x\u{1b}[31m") == "\"x\\x1b[31m\"")
        #expect(LineLogHandler.quoted("") == "\"\"")
    }
}

/// The persistent store with hostile contents: every refusal names the file and changes nothing.
@Suite struct PersistentStoreTests {
    static let yaml = AttributionTests.yaml

    func scratch() throws -> (String, PersistentStore) {
        let root = "/run/quiver-store-\(UUID().uuidString.prefix(8))"
        return (root, try PersistentStore(path: root + "/topologies.d"))
    }

    @Test func enableDisableAndRecordsAreRootsOnly() throws {
        let (root, store) = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = NSTemporaryDirectory() + "quiver-at-\(UUID().uuidString.prefix(6)).yaml"
        try Self.yaml.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = try store.enable(file: file, node: nil, fabricNetns: "fab0")
        #expect(r.topology == "at" && r.text == Self.yaml && r.fabricNetns == "fab0")
        var st = stat()
        #expect(stat(store.path, &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(stat(store.path + "/at.json", &st) == 0 && st.st_mode & 0o777 == 0o600)
        // Editing the source changes nothing until the next enable.
        try "garbage: [".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try store.record("at")?.parsed().name == "at")
        #expect(try store.disable("at"))
        #expect(try !store.disable("at"))
        #expect(try store.entries().isEmpty)
    }

    @Test func invalidFileIsRefusedWithItsLocationAndNothingWritten() throws {
        let (root, store) = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = NSTemporaryDirectory() + "quiver-bad-\(UUID().uuidString.prefix(6)).yaml"
        try Self.yaml.replacingOccurrences(of: "maxbw: 10M", with: "maxbw: 10Q").write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect { try store.enable(file: file, node: nil, fabricNetns: nil) } throws: { e in
            "\(e)".contains("\(file):6:") && "\(e)".contains("10Q")
        }
        #expect(!FileManager.default.fileExists(atPath: store.path))
        #expect(throws: TopologyErrors.self) { try store.enable(file: file + ".missing", node: nil, fabricNetns: nil) }
        // --node on a file without `nodes:`.
        try Self.yaml.write(toFile: file, atomically: true, encoding: .utf8)
        #expect { try store.enable(file: file, node: "n1", fabricNetns: nil) } throws: { "\($0)".contains("has no `nodes:`") }
        #expect(!FileManager.default.fileExists(atPath: store.path))
    }

    @Test func plantedFilesAreReportedNotUsed() throws {
        let (root, store) = try scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: store.path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try "{}".write(toFile: store.path + "/broken.json", atomically: true, encoding: .utf8)
        try "{}".write(toFile: store.path + "/NOT A NAME.json", atomically: true, encoding: .utf8)
        #expect(symlink("/etc/passwd", store.path + "/link.json") == 0)
        let entries = try store.entries()
        #expect(entries.count == 3)
        for e in entries {
            guard case .failure(let f) = e.record else { Issue.record("\(e.name) was used"); continue }
            #expect("\(f)".contains(store.path), "\(f)")
        }
        #expect(entries.first { $0.name == "link" }.map { "\($0.record)".contains("symbolic link") } == true)
    }

    @Test(arguments: ["relative/dir", "/etc/../tmp", "/etc/./quiver", ""])
    func configDirectoryMustBeAbsoluteAndPlain(_ path: String) {
        #expect(throws: PersistentStoreError.self) { try PersistentStore(path: path) }
    }

    @Test func worldWritableDirectoryIsRefused() throws {
        #expect(throws: (any Error).self) { try PersistentStore(path: "/tmp/quiver-store-\(UUID().uuidString.prefix(6))").entries() }
    }
}
