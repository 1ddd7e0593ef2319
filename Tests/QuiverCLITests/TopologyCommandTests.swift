import Foundation
import QuiverKernel
import QuiverNetlink
import Testing

/// The topology commands as a user runs them, including `kill -9` in the middle of an apply.
@Suite struct TopologyCommandTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../QuiverTopologyTests/Fixtures").standardized

    func withFabricNamespace<T>(_ body: (NetworkNamespace, NetlinkHandle) throws -> T) throws -> T {
        let name = "qcf-" + String(UUID().uuidString.prefix(6)).lowercased()
        let ns = try NetworkNamespace.create(named: name)
        defer { try? NetworkNamespace.delete(named: name) }
        return try body(ns, try NetlinkHandle(namespace: ns))
    }

    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "quiver-\(UUID().uuidString).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A topology of `hosts` netns hosts on one switch, all capped.
    func scaleTopology(_ name: String, hosts: Int) -> String {
        var s = "name: \(name)\nswitches:\n  - name: s0\ntenants:\n  - name: t0\n    maxbw: 1G\n    hosts:\n"
        for i in 0..<hosts {
            s += "      - name: h\(i)\n        vnics:\n          - {name: n0, over: s0, ips: [10.62.\(i / 200).\(i % 200 + 2)/16], maxbw: 100M}\n"
        }
        return s
    }

    @Test func everyMalformedFixtureExitsTwoAndChangesNothing() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 50)
        try withFabricNamespace { ns, h in
            for f in files {
                let r = try quiver(["apply", Self.fixtures.appendingPathComponent(f).path, "--fabric-netns", ns.name!])
                #expect(r.status == 2, "\(f): exit \(r.status)")
                #expect(r.stderr.contains(": error: "), "\(f): \(r.stderr)")
            }
            #expect(!NetworkNamespace.listNamed().contains { $0.hasPrefix("fx-") }, "no namespace created")
            #expect(try h.links().map(\.name) == ["lo"], "no link created")
        }
    }

    @Test func applyShowListGraphDestroy() throws {
        let name = "c" + String(UUID().uuidString.prefix(5)).lowercased().filter { $0.isLetter || $0.isNumber }
        let file = try write(scaleTopology(name, hosts: 3))
        defer { try? FileManager.default.removeItem(atPath: file) }
        try withFabricNamespace { ns, _ in
            let fab = ["--fabric-netns", ns.name!]
            let dry = try quiver(["apply", file, "--dry-run"] + fab)
            #expect(dry.status == 0)
            #expect(dry.stdout.contains("would create namespace \(name)-t0-h0"))
            #expect(!NetworkNamespace.listNamed().contains("\(name)-t0-h0"), "dry run changes nothing")
            let apply = try quiver(["apply", file] + fab)
            #expect(apply.status == 0, "\(apply.stderr)")
            #expect(apply.stdout.contains("\(name): created"))
            let again = try quiver(["apply", file] + fab)
            #expect(again.stdout.contains("\(name): no changes"))
            let show = try quiver(["show", name, "-o", "json"] + fab)
            let rows = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(rows.count == 3)
            #expect(rows.allSatisfy { $0["state"] as? String == "up" && $0["maxbw"] as? String == "100M" })
            let list = try quiver(["list"])
            #expect(list.stdout.contains(name))
            let graph = try quiver(["graph", file, "--format", "dot"])
            #expect(graph.stdout.contains("cluster_t0"))
            let destroy = try quiver(["destroy", name] + fab)
            #expect(destroy.status == 0)
            #expect(!NetworkNamespace.listNamed().contains { $0.hasPrefix(name + "-") })
            #expect(!(try quiver(["list"]).stdout.contains(name)))
        }
    }

    /// What `--dry-run` prints is what `apply -v` then does: the same phases, in the same order,
    /// with the same steps — for a first apply and for an edit — and `-o json` lists them too.
    @Test func dryRunPrintsWhatApplyRuns() throws {
        let name = "d" + String(UUID().uuidString.prefix(5)).lowercased().filter { $0.isLetter || $0.isNumber }
        let file = try write(scaleTopology(name, hosts: 2))
        defer { try? FileManager.default.removeItem(atPath: file) }
        /// The plan's lines: phase headers, and steps without the dry run's "would ".
        func planLines(_ out: String) -> [String] {
            out.split(separator: "\n").map(String.init).filter { $0.hasPrefix("phase ") || $0.hasPrefix("  ") && !$0.contains(" ms") }
                .map { $0.replacingOccurrences(of: "  would ", with: "  ") }
        }
        try withFabricNamespace { ns, _ in
            let fab = ["--fabric-netns", ns.name!]
            for edit in [false, true] {
                if edit { try scaleTopology(name, hosts: 2).replacingOccurrences(of: "maxbw: 100M", with: "maxbw: 50M")
                    .replacingOccurrences(of: "10.62.0.3/16", with: "10.62.0.9/16").write(toFile: file, atomically: true, encoding: .utf8) }
                let dry = try quiver(["apply", file, "--dry-run"] + fab)
                let json = try quiver(["apply", file, "--dry-run", "-o", "json"] + fab)
                let real = try quiver(["apply", file, "-v"] + fab)
                #expect(dry.status == 0 && json.status == 0 && real.status == 0, "\(dry.stderr) \(json.stderr) \(real.stderr)")
                let planned = planLines(dry.stdout)
                #expect(planned.first?.hasPrefix("phase 1/") == true, "\(dry.stdout)")
                #expect(planLines(real.stdout) == planned, "dry run:\n\(dry.stdout)\napply -v:\n\(real.stdout)")
                let phases = (try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["phases"] as? [[String: Any]] ?? []
                let headers = planned.filter { $0.hasPrefix("phase ") }
                #expect(phases.count == headers.count)
                for (p, h) in zip(phases, headers) { #expect(h.contains(": \(p["phase"] as? String ?? "?")"), "\(h) vs \(p)") }
                if edit {
                    #expect(headers.map { $0.components(separatedBy: ": ").dropFirst().joined(separator: ": ") }
                        == ["rules (on a thread of its own beside the namespaces and switches; in before any VNIC is made or moved)",
                            "host addresses and routes (one batch per host)", "caps"], "\(headers)")
                }
            }
            #expect(try quiver(["destroy", name] + fab).status == 0)
        }
    }

    /// `quiver show` without a name shows every applied topology's VNICs, as `dladm show-vnic`
    /// shows every VNIC.
    @Test func showWithoutANameShowsEveryAppliedTopology() throws {
        let a = "sa" + String(UUID().uuidString.prefix(4)).lowercased().filter { $0.isLetter || $0.isNumber }
        let b = "sb" + String(UUID().uuidString.prefix(4)).lowercased().filter { $0.isLetter || $0.isNumber }
        let fa = try write(scaleTopology(a, hosts: 2)), fb = try write(scaleTopology(b, hosts: 1).replacingOccurrences(of: "10.62.", with: "10.63."))
        defer { for f in [fa, fb] { try? FileManager.default.removeItem(atPath: f) } }
        try withFabricNamespace { ns, _ in
            let fab = ["--fabric-netns", ns.name!]
            #expect(try quiver(["apply", fa] + fab).status == 0)
            #expect(try quiver(["apply", fb] + fab).status == 0)
            let all = try quiver(["show", "-o", "json"] + fab)
            #expect(all.status == 0, "\(all.stderr)")
            let rows = try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [[String: Any]] ?? []
            let links = Set(rows.compactMap { $0["link"] as? String })
            #expect(links.isSuperset(of: ["\(a)-h0-n0", "\(a)-h1-n0", "\(b)-h0-n0"]), "\(links)")
            #expect(rows.filter { ($0["link"] as? String)?.hasPrefix(a + "-") == true || ($0["link"] as? String)?.hasPrefix(b + "-") == true }
                        .allSatisfy { $0["state"] as? String == "up" })
            let one = try quiver(["show", b, "-o", "json"] + fab)
            let oneRows = try JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(oneRows.compactMap { $0["link"] as? String } == ["\(b)-h0-n0"])
            let table = try quiver(["show"] + fab)
            #expect(table.stdout.hasPrefix("VNIC") && table.stdout.contains("\(a)-h1-n0") && table.stdout.contains("\(b)-h0-n0"),
                    "exit \(table.status): \(table.stdout.prefix(400)) \(table.stderr.prefix(400))")
            #expect(try quiver(["destroy", a] + fab).status == 0)
            #expect(try quiver(["destroy", b] + fab).status == 0)
        }
    }

    @Test func jsonOutputForScripts() throws {
        let bad = Self.fixtures.appendingPathComponent("bad-unit.yaml").path
        let v = try quiver(["validate", bad, "-o", "json"])
        #expect(v.status == 2)
        let out = try JSONSerialization.jsonObject(with: Data(v.stdout.utf8)) as? [String: Any]
        #expect(out?["valid"] as? Bool == false)
        let first = (out?["errors"] as? [[String: Any]])?.first
        #expect(first?["line"] as? Int == 14)
        #expect((first?["message"] as? String)?.contains("unknown bandwidth unit") == true)

        let name = "j" + String(UUID().uuidString.prefix(5)).lowercased().filter { $0.isLetter || $0.isNumber }
        let file = try write(scaleTopology(name, hosts: 2))
        defer { try? FileManager.default.removeItem(atPath: file) }
        try withFabricNamespace { ns, _ in
            let ok = try quiver(["validate", file, "-o", "json"])
            #expect((try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any])?["vnics"] as? Int == 2)
            let apply = try quiver(["apply", file, "-o", "json", "--fabric-netns", ns.name!])
            let a = try JSONSerialization.jsonObject(with: Data(apply.stdout.utf8)) as? [String: Any]
            #expect((a?["created"] as? Int ?? 0) > 0)
            #expect((a?["operations"] as? [String])?.contains("create namespace \(name)-t0-h1") == true)
            let destroy = try quiver(["destroy", name, "-o", "json", "--fabric-netns", ns.name!])
            let d = try JSONSerialization.jsonObject(with: Data(destroy.stdout.utf8)) as? [String: Any]
            #expect((d?["deleted"] as? Int ?? 0) >= 4)
        }
    }

    @Test func concurrentAppliesOfOneTopologyAreSerialized() throws {
        let name = "l" + String(UUID().uuidString.prefix(5)).lowercased().filter { $0.isLetter || $0.isNumber }
        let file = try write(scaleTopology(name, hosts: 20))
        defer { try? FileManager.default.removeItem(atPath: file) }
        try withFabricNamespace { ns, h in
            let fab = ["--fabric-netns", ns.name!]
            let procs = (0..<3).map { _ -> Process in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: quiverBinary)
                p.arguments = ["apply", file] + fab
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                return p
            }
            for p in procs { try p.run() }
            for p in procs { p.waitUntilExit() }
            // All three succeed: the flock makes them take turns; the later ones find nothing to do.
            #expect(procs.map(\.terminationStatus) == [0, 0, 0])
            #expect(try quiver(["apply", file] + fab).stdout.contains("no changes"))
            #expect(try quiver(["destroy", name] + fab).status == 0)
            #expect(try h.links().map(\.name) == ["lo"])
        }
    }

    @Test(arguments: [0.015, 0.035, 0.06, 0.085])
    func killNineMidApplyThenApplyConvergesAndDestroyCleansUp(after delay: Double) throws {
        let name = "k" + String(UUID().uuidString.prefix(5)).lowercased().filter { $0.isLetter || $0.isNumber }
        let file = try write(scaleTopology(name, hosts: 60))
        defer { try? FileManager.default.removeItem(atPath: file) }
        try withFabricNamespace { ns, h in
            let fab = ["--fabric-netns", ns.name!]
            try quiverKilled(["apply", file] + fab, after: delay)

            let recover = try quiver(["apply", file] + fab)
            #expect(recover.status == 0, "after kill at \(delay)s: \(recover.stderr)")
            let again = try quiver(["apply", file] + fab)
            #expect(again.stdout.contains("no changes"), "converged: \(again.stdout)")
            let destroy = try quiver(["destroy", file] + fab)
            #expect(destroy.status == 0)
            #expect(!NetworkNamespace.listNamed().contains { $0.hasPrefix(name + "-") })
            #expect(try h.links().map(\.name) == ["lo"])
        }
    }
}
