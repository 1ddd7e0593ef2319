import Foundation
import QuiverTestSupport
import Testing

/// The daemon supervising real guests (the test guest, TCG here): after a simulated reboot both
/// guests come back; then a `kill -9` of qemu with
/// `restart: on-failure` brings the guest back, with `restart: never` leaves it stopped, and a
/// guest that cannot start any more (its kernel broken under it) is given up on after the limit,
/// the reason shown by `quiver vm list` and `quiver status`. Part of DaemonTrafficTests' serialized
/// suite: one daemon runs per host.
extension DaemonTrafficTests {
    static func guestTopology(_ name: String, dir: String) -> String {
        func vm(_ host: String, _ ip: String, _ restart: String) -> String {
            """
                  - name: \(host)
                    kind: vm
                    kernel: \(dir)/vmlinuz
                    initrd: \(dir)/initrd.img
                    cmdline: ipv6.disable=1
                    memory: 256
                    restart: \(restart)
                    vnics: [{name: eth0, over: sw0, ips: [\(ip)/24]}]
            """
        }
        return """
        name: \(name)
        switches: [{name: sw0}]
        tenants:
          - name: a
            hosts:
        \(vm("g1", "10.31.0.1", "on-failure"))
        \(vm("g2", "10.31.0.2", "never"))
        """
    }

    /// `quiver vm list -o json`'s rows of this topology, by host.
    func guests(_ name: String) throws -> [String: [String: Any]] {
        let rows = try JSONSerialization.jsonObject(with: Data(try quiver(["vm", "list", "-o", "json"]).stdout.utf8)) as? [[String: Any]] ?? []
        var out: [String: [String: Any]] = [:]
        for r in rows {
            guard let n = r["name"] as? String, n.hasPrefix(name + "/") else { continue }
            out[String(n.dropFirst(name.count + 1))] = r
        }
        return out
    }

    func pid(_ row: [String: Any]?) -> Int32? { (row?["pid"] as? NSNumber)?.int32Value }
    func daemonField(_ row: [String: Any]?, _ key: String) -> Any? { (row?["daemon"] as? [String: Any])?[key] }

    @Test func killedGuestsFollowTheirPolicyAndACrashLoopIsGivenUp() throws {
        try buildTestGuest()
        let fm = FileManager.default
        let tag = String(UUID().uuidString.prefix(4)).lowercased()
        let name = "s\(tag)"
        let dir = "/run/quiver-test-\(tag)"
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: dir) }
        // The guest's files are copies the test may break.
        for f in ["vmlinuz", "initrd.img"] { try fm.copyItem(atPath: "\(repositoryRoot)/.build-guest/\(f)", toPath: "\(dir)/\(f)") }
        let file = "\(dir)/\(name).yaml"
        try Self.guestTopology(name, dir: dir).write(toFile: file, atomically: true, encoding: .utf8)
        let config = "\(dir)/topologies.d"
        let fabricName = "qcg-\(tag)"
        let fab = ["--fabric-netns", fabricName]
        #expect(try witnessText(["ip", "netns", "add", fabricName]).isEmpty)
        defer {
            _ = try? quiver(["destroy", name] + fab)
            _ = try? witnessText(["ip", "netns", "del", fabricName])
        }
        let enable = try quiver(["enable", file, "--config-dir", config] + fab)
        #expect(enable.status == 0, "\(enable.stderr)")
        let apply = try quiver(["apply", file] + fab)
        #expect(apply.status == 0, "\(apply.stderr)")
        let before = try guests(name)
        #expect(before["g1"]?["state"] as? String == "running" && before["g2"]?["state"] as? String == "running", "\(before)")
        // A reboot, simulated: the fabric and its guests gone, their run directories with them.
        #expect(try quiver(["destroy", name] + fab).status == 0)
        #expect(try guests(name).isEmpty && !fm.fileExists(atPath: "/run/quiver/vms/\(name)"))

        let daemon = try RunningDaemon(["--config-dir", config, "--metrics-address", "none", "--reconcile-interval", "3600",
                                        "--restart-backoff", "0.2", "--restart-limit", "3", "--restart-window", "600"])
        // Boot: both guests start again — `restart: never` too, since a boot is not a restart
        // (as SmartOS autoboots a zone) — and boot to their agents.
        var first: [String: [String: Any]] = [:]
        let booted = try within(120) {
            first = try guests(name)
            return ["g1", "g2"].allSatisfy { first[$0]?["state"] as? String == "running" }
                && ["g1", "g2"].allSatisfy { h in (try? quiver(["vm", "console", "\(name)/\(h)", "--no-follow"]).stdout.contains("quiver-guest: ready \(name)-\(h)")) == true }
        }
        #expect(booted != nil, "guests not back after the simulated reboot: \(first)\n\(daemon.text)")
        print("daemon: after a simulated reboot both guests boot again in \(booted.map { String(format: "%.1f s", $0) } ?? "-")")
        guard let pid1 = pid(first["g1"]), let pid2 = pid(first["g2"]) else {
            Issue.record("guests not running: \(first)")
            return
        }
        #expect(daemonField(first["g1"], "restarts") as? Int == 0, "a boot is not a restart")

        // on-failure: killed → running again, in a new qemu, counted.
        #expect(kill(pid1, SIGKILL) == 0)
        var back: [String: [String: Any]] = [:]
        let t1 = try within(60) {
            back = try guests(name)
            return back["g1"]?["state"] as? String == "running" && pid(back["g1"]) != pid1
                && daemonField(back["g1"], "restarts") as? Int == 1
        }
        #expect(t1 != nil, "g1 not restarted: \(back["g1"] ?? [:])\n\(daemon.text)")
        print("daemon: g1 (restart: on-failure) killed with SIGKILL → running again in \(t1.map { String(format: "%.1f s", $0) } ?? "-")")
        #expect(daemonField(back["g1"], "lastExit") as? String == "qemu died (killed, crashed or exited without a guest power-off)")
        // The new qemu boots the guest to its agent again.
        let rebooted = try within(90) { try quiver(["vm", "console", "\(name)/g1", "--no-follow"]).stdout.contains("quiver-guest: ready \(name)-g1") }
        #expect(rebooted != nil, "g1 did not boot again")

        // never: killed → stays stopped, and says why.
        #expect(kill(pid2, SIGKILL) == 0)
        let t2 = try within(20) { daemonField(try guests(name)["g2"], "state") as? String == "stopped" }
        #expect(t2 != nil, "\(daemon.text)")
        Thread.sleep(forTimeInterval: 3)
        let g2 = try guests(name)["g2"]
        #expect(g2?["state"] as? String != "running", "a restart: never guest was started again: \(g2 ?? [:])")
        #expect(daemonField(g2, "reason") as? String == "restart: never")
        #expect(daemonField(g2, "restarts") as? Int == 0)

        // A guest that cannot start any more: its kernel replaced by garbage, then killed. Each
        // restart fails at once; after the limit (3 in the window, the first restart included)
        // the daemon leaves it stopped and says why.
        try Data(repeating: 0x5a, count: 4096).write(to: URL(fileURLWithPath: "\(dir)/vmlinuz"))
        guard let pid1b = pid(back["g1"]) else { return }
        #expect(kill(pid1b, SIGKILL) == 0)
        var g1: [String: Any]?
        let t3 = try within(30) { g1 = try guests(name)["g1"]; return daemonField(g1, "state") as? String == "given up" }
        #expect(t3 != nil, "\(g1 ?? [:])\n\(daemon.text)")
        let reason = daemonField(g1, "reason") as? String ?? ""
        #expect(reason == "3 restarts tried in 600 s and gone again (qemu failed to start): left stopped", "\(reason)")
        #expect(daemon.text.components(separatedBy: "guest restart failed").count - 1 == 2, "\(daemon.text)")
        print("daemon: g1 with a broken kernel → given up after \(t3.map { String(format: "%.1f s", $0) } ?? "-"): \(reason)")
        let table = try quiver(["vm", "list"]).stdout
        #expect(table.contains("qemu failed to start"), "\(table)")
        let status = try quiver(["status", "--config-dir", config])
        #expect(status.stdout.contains("given up") && status.stdout.contains("restart: never"), "\(status.stdout)")
        Thread.sleep(forTimeInterval: 2)
        #expect(daemonField(try guests(name)["g1"], "state") as? String == "given up", "tried again after giving up")
        #expect(daemon.stop() == 0, "\(daemon.text)")
    }
}
