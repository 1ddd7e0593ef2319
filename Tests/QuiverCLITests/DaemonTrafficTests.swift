import Foundation
import QuiverTestSupport
import QuiverTopology
import Testing

/// `quiver enable` + `quiver daemon` as an operator runs them: a reboot simulated, drift of each
/// kind repaired within a bound, a burst coalesced, a foreign qdisc left alone, the topology's
/// lock honoured, metrics scraped by a real Prometheus, SIGTERM leaving everything running.
@Suite(.serialized) struct DaemonTrafficTests {
    /// A running `quiver daemon`, its log in a file.
    final class RunningDaemon {
        let process = Process()
        let log: String
        init(_ args: [String]) throws {
            log = NSTemporaryDirectory() + "quiver-daemon-\(UUID().uuidString.prefix(8)).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: quiverBinary)
            process.arguments = ["daemon"] + args
            process.standardOutput = FileHandle.nullDevice
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            try process.run()
        }
        var text: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func stop() -> Int32 {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            process.waitUntilExit()
            return process.terminationStatus
        }
        deinit {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            try? FileManager.default.removeItem(atPath: log)
        }
    }

    /// Polls `condition` every 20 ms for at most `seconds`; the time it took, or nil.
    func within(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if try condition() { return Date().timeIntervalSince(start) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return nil
    }

    /// A witness command line (ip, tc, nft, curl, promtool) through the shell: its status and output.
    func sh(_ line: String) -> (Int32, String) {
        do { return (0, try witnessText(["/bin/sh", "-c", line])) } catch let e as WitnessError { return (e.status, "") } catch { return (-1, "") }
    }

    static func topology(_ name: String, subnet: Int) -> String {
        // db's VNIC holds 50 addresses: the burst deletes them all at once.
        let many = (1...50).map { "10.\(subnet).1.\($0)/16" }.joined(separator: ", ")
        return """
        name: \(name)
        switches: [{name: sw0}]
        tenants:
          - name: a
            maxbw: 50M
            hosts:
              - {name: web, vnics: [{name: net0, over: sw0, ips: [10.\(subnet).0.1/16], maxbw: 20M, protection: [mac-nospoof, ip-nospoof]}]}
              - {name: db, vnics: [{name: net0, over: sw0, ips: [10.\(subnet).0.2/16, \(many)]}]}
        expect:
          - reach: {from: a/web, to: a/db, probe: [icmp, tcp]}
        """
    }

    @Test func bootDriftMetricsLockAndSigterm() throws {
        let tag = String(UUID().uuidString.prefix(4)).lowercased()
        let names = ["d\(tag)", "e\(tag)"]
        let dir = NSTemporaryDirectory() + "quiver-daemon-\(tag)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = names.map { "\(dir)/\($0).yaml" }
        for (i, n) in names.enumerated() { try Self.topology(n, subnet: 80 + i).write(toFile: files[i], atomically: true, encoding: .utf8) }
        // Root's own directory under /run (not /tmp, which others may write): the records' home.
        let config = "/run/quiver-test-\(tag)/topologies.d"
        defer { try? FileManager.default.removeItem(atPath: "/run/quiver-test-\(tag)") }
        let fabricName = "qcd-\(tag)"
        let fab = ["--fabric-netns", fabricName]
        #expect(sh("ip netns add \(fabricName)").0 == 0)
        defer {
            for n in names { _ = try? quiver(["destroy", n] + fab) }
            _ = sh("ip netns del \(fabricName)")
        }
        for f in files {
            let r = try quiver(["enable", f, "--config-dir", config] + fab)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let listed = try quiver(["list", "--config-dir", config])
        #expect(names.allSatisfy { n in listed.stdout.split(separator: "\n").contains { $0.hasPrefix(n) && $0.contains("yes") } }, "\(listed.stdout)")

        // A host before its reboot: both applied; then every runtime trace removed.
        for f in files { #expect(try quiver(["apply", f] + fab).status == 0) }
        for n in names { #expect(try quiver(["destroy", n] + fab).status == 0) }
        #expect(!sh("ip netns list").1.contains(names[0]))

        let port = 20000 + Int.random(in: 0..<20000)
        let daemon = try RunningDaemon(["--config-dir", config, "--metrics-address", "127.0.0.1:\(port)", "--reconcile-interval", "3600"])
        let back = try within(30) {
            guard let top = try JSONSerialization.jsonObject(with: Data(try quiver(["status", "--config-dir", config, "-o", "json"]).stdout.utf8)) as? [String: Any],
                  let rows = top["topologies"] as? [[String: Any]] else { return false }
            return names.allSatisfy { n in rows.contains { $0["topology"] as? String == n && $0["applied"] as? Bool == true } }
        }
        #expect(back != nil, "daemon log:\n\(daemon.text)")
        print("daemon: both topologies back \(String(format: "%.2f", back ?? -1)) s after it started")
        // One daemon per host: a second one refuses to start and names the first.
        let second = try quiver(["daemon", "--config-dir", config, "--metrics-address", "none"])
        #expect(second.status != 0 && second.stderr.contains("another quiver daemon is running on this host (pid \(daemon.process.processIdentifier))"), "\(second.stderr)")
        // The operator's screen: the daemon, then one row per topology, persistent and applied.
        let screen = try quiver(["status", "--config-dir", config]).stdout
        let lines = screen.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("daemon: running (pid \(daemon.process.processIdentifier),") == true, "\(screen)")
        #expect(lines.contains { $0.hasPrefix("TOPOLOGY") && $0.contains("PERSISTENT") && $0.contains("APPLIED") && $0.contains("REPAIRS") }, "\(screen)")
        for n in names {
            let row = lines.first { $0.hasPrefix(n + " ") }?.split(separator: " ").map(String.init) ?? []
            #expect(row.count >= 5 && row[1] == "yes" && row[2] == "yes" && row[4] == "0", "\(n): \(screen)")
        }
        for f in files {
            let v = try quiver(["verify", f] + fab)
            #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        }

        try drift(names[0], fabricName: fabricName, daemon: daemon)
        try burst(names[0], daemon: daemon)
        try lockHonoured(names[1], fabricName: fabricName, daemon: daemon)
        try handAppliedDifferentFile(names[1], file: files[1], config: config, fab: fab, daemon: daemon)
        try metrics(port: port, topology: names[0], file: files[0], fab: fab)

        // SIGTERM: the daemon goes, the fabric and its hosts stay.
        #expect(daemon.stop() == 0, "\(daemon.text)")
        #expect(daemon.text.contains("fabrics and guests keep running"))
        #expect(sh("ip netns list").1.contains("\(names[0])-a-web"))
        #expect(sh("ip -n \(fabricName) link show \(names[0])-web-net0").0 == 0)
    }

    /// Each kind of drift, made with the witnesses (tc, nft, ip), is repaired within 5 s.
    func drift(_ n: String, fabricName: String, daemon: RunningDaemon) throws {
        let f = "ip netns exec \(fabricName)"
        // A foreign veth with a foreign qdisc: never touched.
        #expect(sh("ip -n \(fabricName) link add fx\(n) type veth peer name fy\(n) && tc -n \(fabricName) qdisc add dev fx\(n) root tbf rate 1mbit burst 10k latency 10ms").0 == 0)
        let cases: [(String, String, () -> Bool)] = [
            ("an owned qdisc", "tc -n \(fabricName) qdisc del dev \(n)-a-f root", { sh("tc -n \(fabricName) qdisc show dev \(n)-a-f").1.contains("htb") }),
            ("the nft table", "\(f) nft delete table bridge quiver-\(n)", { sh("\(f) nft list table bridge quiver-\(n)").0 == 0 }),
            ("a VNIC's host-side link", "ip -n \(fabricName) link del \(n)-web-net0", { sh("ip -n \(n)-a-web -br addr show net0").1.contains("10.80.0.1/16") && sh("ip -n \(fabricName) -br link show \(n)-web-net0").1.contains("UP") }),
            ("an address inside a host", "ip -n \(n)-a-db addr del 10.80.0.2/16 dev net0", { sh("ip -n \(n)-a-db -br addr show net0").1.contains("10.80.0.2/16") }),
            ("a port set down", "ip -n \(fabricName) link set \(n)-db-net0 down", { sh("ip -n \(fabricName) -br link show \(n)-db-net0").1.contains(" UP ") }),
        ]
        for (what, command, repaired) in cases {
            #expect(repaired(), "\(what) before the drift")
            #expect(sh(command).0 == 0, "\(command)")
            let t = within(5) { repaired() }
            #expect(t != nil, "\(what) not repaired within 5 s; daemon log:\n\(daemon.text)")
            print("daemon: \(what) (\(command)) → repaired in \(t.map { String(format: "%.0f ms", $0 * 1000) } ?? "(not within 5 s)")")
        }
        #expect(sh("tc -n \(fabricName) qdisc show dev fx\(n)").1.contains("tbf"), "the foreign qdisc was touched")
        #expect(sh("ip -n \(fabricName) link del fx\(n)").0 == 0)
    }

    /// 50 addresses deleted in one burst: a few repairs at most, all 50 back.
    func burst(_ n: String, daemon: RunningDaemon) throws {
        let before = daemon.text.components(separatedBy: "repaired drift").count
        let batch = (1...50).map { "address del 10.80.1.\($0)/16 dev net0" }.joined(separator: "\n")
        #expect(sh("printf '\(batch)\\n' | ip -n \(n)-a-db -batch -").0 == 0)
        let t = within(5) { let have = sh("ip -n \(n)-a-db -br addr show net0").1; return (1...50).allSatisfy { have.contains("10.80.1.\($0)/16 ") || have.hasSuffix("10.80.1.\($0)/16\n") } }
        #expect(t != nil, "\(daemon.text)")
        Thread.sleep(forTimeInterval: 0.5)
        let repairs = daemon.text.components(separatedBy: "repaired drift").count - before
        print("daemon: 50 addresses deleted in a burst → \(repairs) repair(s), all back in \(t.map { String(format: "%.0f ms", $0 * 1000) } ?? "-")")
        #expect(repairs >= 1 && repairs <= 3, "\(repairs) repairs for one burst")
    }

    /// While the test holds the topology's lock (as a `quiver apply` would), the daemon repairs
    /// nothing; once it is released, the repair follows.
    func lockHonoured(_ n: String, fabricName: String, daemon: RunningDaemon) throws {
        let lockFile = "/run/quiver/topologies/group-\(String(KernelNames(n).group, radix: 16)).lock"
        let fd = open(lockFile, O_RDWR | O_CLOEXEC)
        #expect(fd >= 0, "\(lockFile)")
        guard fd >= 0 else { return }
        #expect(flock(fd, LOCK_EX) == 0)
        #expect(sh("tc -n \(fabricName) qdisc del dev \(n)-a-t root").0 == 0)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(!sh("tc -n \(fabricName) qdisc show dev \(n)-a-t").1.contains("htb"), "repaired while another apply held the lock")
        flock(fd, LOCK_UN)
        close(fd)
        #expect(within(5) { sh("tc -n \(fabricName) qdisc show dev \(n)-a-t").1.contains("htb") } != nil, "\(daemon.text)")
    }

    /// A hand apply of a file that differs from the record only in one cap: the daemon does not
    /// undo it — repair pauses, says why, and leaves the hand-made cap; `enable` + SIGHUP resumes.
    func handAppliedDifferentFile(_ n: String, file: String, config: String, fab: [String], daemon: RunningDaemon) throws {
        let changed = file.replacingOccurrences(of: ".yaml", with: "-30m.yaml")
        try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(of: "maxbw: 20M", with: "maxbw: 30M")
            .write(toFile: changed, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: changed) }
        func ceil30() -> Bool { sh("tc -n \(fab[1]) class show dev \(n)-a-t").1.contains("ceil 30Mbit") }
        #expect(!ceil30())
        let hand = try quiver(["apply", changed] + fab)
        #expect(hand.status == 0, "\(hand.stderr)")
        #expect(ceil30(), "\(hand.stdout)\n\(sh("tc -n \(fab[1]) class show dev \(n)-a-t").1)")
        // The hand apply's own notifications reach the daemon: it must pause, not put 20M back.
        let paused = within(5) { daemon.text.contains("drift repair paused") && daemon.text.contains("topology=\(n)") }
        #expect(paused != nil, "\(daemon.text)")
        Thread.sleep(forTimeInterval: 1)
        #expect(ceil30(), "the daemon undid a hand-made apply")
        let status = try quiver(["status", "--config-dir", config]).stdout
        #expect(status.contains("applied by hand from a file that differs from its persistent record"), "\(status)")
        // Recording the new file and SIGHUP: repair resumes with the new record, the 30M cap kept.
        #expect(try quiver(["enable", changed, "--config-dir", config] + fab).status == 0)
        kill(daemon.process.processIdentifier, SIGHUP)
        let resumed = try within(5) {
            let out = try quiver(["status", "--config-dir", config, "-o", "json"]).stdout
            guard let top = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any],
                  let rows = top["topologies"] as? [[String: Any]] else { return false }
            return rows.contains { $0["topology"] as? String == n && $0["problem"] == nil && $0["applied"] as? Bool == true }
        }
        #expect(resumed != nil, "\(daemon.text)")
        #expect(ceil30())
        #expect(sh("tc -n \(fab[1]) qdisc del dev \(n)-a-t root").0 == 0)
        #expect(within(5) { ceil30() } != nil, "not repaired after the resume: \(daemon.text)")
    }

    /// Debian's Prometheus scrapes the daemon; the VNIC series is there with its labels and grows
    /// with traffic; promtool accepts the endpoint's output.
    func metrics(port: Int, topology n: String, file: String, fab: [String]) throws {
        let text = sh("curl -sf http://127.0.0.1:\(port)/metrics").1
        #expect(text.contains("quiver_vnic_transmit_bytes_total{topology=\"\(n)\",tenant=\"a\",host=\"web\",vnic=\"net0\"}"), "\(text.prefix(2000))")
        #expect(text.contains("quiver_cap_ceil_bytes_per_second{topology=\"\(n)\",tenant=\"a\",class=\"web/net0\",direction=\"in\"} 2500000"))
        #expect(text.contains("quiver_drift_repairs_total{topology=\"\(n)\""))
        let dir = NSTemporaryDirectory() + "quiver-prom-\(n)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.write(toFile: "\(dir)/m.txt", atomically: true, encoding: .utf8)
        let check = sh("promtool check metrics < \(dir)/m.txt 2>&1")
        #expect(check.0 == 0, "\(check.1)")

        let promPort = port + 1
        try """
        global: {scrape_interval: 1s}
        scrape_configs:
          - job_name: quiver
            static_configs: [{targets: ['127.0.0.1:\(port)']}]
        """.write(toFile: "\(dir)/prometheus.yml", atomically: true, encoding: .utf8)
        let prom = Process()
        prom.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prom.arguments = ["--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data", "--web.listen-address=127.0.0.1:\(promPort)"]
        prom.standardOutput = FileHandle.nullDevice
        prom.standardError = FileHandle.nullDevice
        try prom.run()
        defer { prom.terminate(); prom.waitUntilExit() }
        let query = "quiver_vnic_transmit_bytes_total%7Btopology%3D%22\(n)%22%2Chost%3D%22web%22%7D"
        func value() -> Double? {
            let body = sh("curl -sf 'http://127.0.0.1:\(promPort)/api/v1/query?query=\(query)'").1
            guard let top = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                  let data = top["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                  let first = result.first, let v = first["value"] as? [Any], let s = v.last as? String else { return nil }
            return Double(s)
        }
        var first: Double?
        _ = within(30) { first = value(); return first != nil }
        #expect(first != nil, "Prometheus never scraped the series")
        // Traffic: verify's probes from web.
        #expect(try quiver(["verify", file] + fab).status == 0)
        var later: Double?
        _ = within(15) { later = value(); return (later ?? 0) > (first ?? .infinity) }
        #expect((later ?? 0) > (first ?? .infinity), "counter did not grow: \(String(describing: first)) → \(String(describing: later))")
        print("prometheus: \(n) web/net0 transmit bytes \(Int(first ?? -1)) → \(Int(later ?? -1)) after traffic")
    }
}
