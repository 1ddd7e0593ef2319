import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverTestSupport
import Testing

/// End to end with real guests (TCG here): two tenants, each with a VM and a namespace host on one
/// switch — `topologies/vms.yaml` under a fresh name, in a fabric namespace the test owns. g1's NIC
/// is a two-queue tap on the switch, g2's a two-queue macvtap over it. The guest is built from
/// Debian packages by scripts/build-test-guest.sh.
@Suite(.serialized) struct VMTopologyTrafficTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    func buildGuest() throws { try buildTestGuest() }

    /// The pids of this topology's running guests in `quiver vm list -o json` (which lists every
    /// topology's guests).
    func pids(_ json: String, _ topology: String) throws -> [Int32] {
        let rows = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
        return rows.filter { ($0["name"] as? String)?.hasPrefix(topology + "/") == true && $0["state"] as? String == "running" }
            .compactMap { ($0["pid"] as? NSNumber)?.int32Value }
    }

    @Test func guestsBootVerifyPassesAndDestroyLeavesNothing() throws {
        try buildGuest()
        let name = "v" + String(UUID().uuidString.prefix(3)).lowercased()
        let text = try String(contentsOfFile: Self.repo + "/topologies/vms.yaml", encoding: .utf8)
            .replacingOccurrences(of: "name: vm\n", with: "name: \(name)\n")
            .replacingOccurrences(of: "../.build-guest/", with: Self.repo + "/.build-guest/")
        let file = NSTemporaryDirectory() + "quiver-\(name).yaml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fabricName = "qcm-" + String(UUID().uuidString.prefix(6)).lowercased()
        let fabricNS = try NetworkNamespace.create(named: fabricName)
        defer { try? NetworkNamespace.delete(named: fabricName) }
        let fab = ["--fabric-netns", fabricName]
        defer { _ = try? quiver(["destroy", name] + fab) }

        let apply = try quiver(["apply", file] + fab)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("start vm g1") || apply.stdout.contains("created"), "\(apply.stdout)")
        let list = try quiver(["vm", "list", "-o", "json"])
        let mine = try pids(list.stdout, name)
        #expect(list.stdout.contains("\"\(name)/g1\"") && list.stdout.contains("\"\(name)/g2\""))
        #expect(list.stdout.contains("\"backend\" : \"userspace\"") || list.stdout.contains("\"backend\" : \"vhost\""))
        #expect(list.stdout.contains("\"device\" : \"macvtap\""), "g2's NIC is listed as a macvtap: \(list.stdout)")
        #expect(try quiver(["vm", "list"]).stdout.contains("eth0=\(name)-g2-eth0(macvtap,"))
        // Both NICs have `queues: 2`: g1's qemu holds two descriptors of one multi-queue tap, g2's
        // two of its macvtap's character device (and nothing else of the network).
        func fds(_ host: String) throws -> [String] {
            let pid = try String(contentsOfFile: "/run/quiver/vms/\(name)/\(host)/qemu.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap {
                try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")
            }
        }
        let fabric = try NetlinkHandle(namespace: fabricNS)
        let macvtap = try fabric.link(named: try InterfaceName(validating: "\(name)-g2-eth0"))
        let sw = try fabric.link(named: try InterfaceName(validating: "\(name)-sw0"))
        let g1fds = try fds("g1"), g2fds = try fds("g2")
        #expect(g1fds.filter { $0 == "/dev/net/tun" }.count == 2, "\(g1fds)")
        #expect(g2fds.filter { $0 == "/dev/tap\(macvtap.index)" }.count == 2, "\(g2fds)")
        #expect(!g2fds.contains("/dev/net/tun"))
        if case .macvtap(let m)? = macvtap.data {
            #expect(m.lowerIndex == sw.index && m.mode == .bridge)
        } else {
            Issue.record("\(macvtap.name) is a \(macvtap.kind ?? "?"), not a macvtap")
        }
        // The switch delivers frames for g2's MAC to its own device (to the macvtap), not to
        // every port: a local entry in its forwarding database (witness: `bridge fdb`).
        let fdb = try witnessText(["ip", "netns", "exec", fabricName, "bridge", "fdb", "show", "br", sw.name])
        #expect(fdb.contains("\(macvtap.mac!) dev \(sw.name) master \(sw.name) permanent"), "\(fdb)")

        // Reach, isolation, the guest's egress cap and a forged MAC from inside the guest.
        let verify = try quiver(["verify", file, "-o", "json"] + fab)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let rows = ((try JSONSerialization.jsonObject(with: Data(verify.stdout.utf8)) as? [String: Any])?["rows"] as? [[String: Any]]) ?? []
        #expect(rows.count == 11)
        #expect(rows.allSatisfy { $0["passed"] as? Bool == true }, "\(rows.filter { $0["passed"] as? Bool != true })")
        #expect(try quiver(["vm", "console", "\(name)/g1", "--no-follow"]).stdout.contains("quiver-guest: ready \(name)-g1"))

        // A cap above what a TCG guest can send: the row fails and says the sender, not the cap,
        // was the limit (its class never went over its rate); a guest pushing into a 20M cap
        // (above) never gets that note. The cap is changed in place, the guests keep running.
        let fast = file + ".fast.yaml"
        let head = text.components(separatedBy: "\nexpect:\n")[0]
        try (head.replacingOccurrences(of: "maxbw: 20M}", with: "maxbw: 2G}")
             + "\nexpect:\n  - bandwidth: {from: red/g1, to: red/h1, rate: 2G, tolerance: 10%, seconds: 2}\n")
            .write(toFile: fast, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: fast) }
        let recapped = try quiver(["apply", fast] + fab)
        #expect(recapped.status == 0 && !recapped.stdout.contains("start vm"), "\(recapped.stdout)\(recapped.stderr)")
        let slow = try quiver(["verify", fast] + fab)
        let slowRow = slow.stdout.split(separator: "\n").first { $0.contains("bandwidth 2G") } ?? ""
        #expect(slow.status == 1 && slowRow.contains("FAIL")
                && slowRow.contains("no cap class was ever over its rate: the guest could not send faster than this"), "\(slow.stdout)")
        #expect(!verify.stdout.contains("no cap class was ever over its rate"))
        #expect(try quiver(["apply", file] + fab).status == 0)

        // A guest stopped behind the topology's back is started again by the next apply.
        #expect(try quiver(["vm", "stop", "\(name)/g2", "--timeout", "0.5"]).stdout.contains("stopped"))
        let again = try quiver(["apply", file] + fab)
        #expect(again.status == 0 && again.stdout.contains("created"), "\(again.stdout)")
        #expect(try pids(try quiver(["vm", "list", "-o", "json"]).stdout, name).count == 2, "g2 running again")
        #expect(try quiver(["apply", file] + fab).stdout.contains("no changes"))

        // Quiver killed between starting qemu and writing its record: the next apply finds the
        // stray qemu by its pidfile path, replaces it, and converges.
        let before = try pids(try quiver(["vm", "list", "-o", "json"]).stdout, name)
        try FileManager.default.removeItem(atPath: "/run/quiver/vms/\(name)/g1/record.json")
        let replaced = try quiver(["apply", file] + fab)
        #expect(replaced.status == 0, "\(replaced.stdout)\(replaced.stderr)")
        let after = try pids(try quiver(["vm", "list", "-o", "json"]).stdout, name)
        #expect(after.count == 2 && Set(after) != Set(before), "g1 restarted: \(before) → \(after)")
        #expect(try quiver(["apply", file] + fab).stdout.contains("no changes"))

        // kill -9 of quiver in the middle of an apply that restarts both guests, at two points.
        for delay in [0.05, 0.15] {
            try FileManager.default.removeItem(atPath: "/run/quiver/vms/\(name)/g1/record.json")
            try FileManager.default.removeItem(atPath: "/run/quiver/vms/\(name)/g2/record.json")
            try quiverKilled(["apply", file] + fab, after: delay)
            let recover = try quiver(["apply", file] + fab)
            #expect(recover.status == 0, "after kill at \(delay) s: \(recover.stderr)")
            #expect(try quiver(["apply", file] + fab).stdout.contains("no changes"), "converged after kill at \(delay) s")
            let running = try pids(try quiver(["vm", "list", "-o", "json"]).stdout, name)
            #expect(running.count == 2)
            let qemus = try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }.filter { pid in
                let c = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                // A jailed qemu's command line holds no host path: it is found by its guest's name.
                return String(decoding: c, as: UTF8.self).split(separator: "\0").contains { $0.hasPrefix("guest=\(name)-") }
            }
            #expect(Set(qemus) == Set(running), "exactly the recorded guests run: \(qemus) vs \(running)")
        }

        let allPids = mine + before + after + (try pids(try quiver(["vm", "list", "-o", "json"]).stdout, name))
        #expect(try quiver(["destroy", name] + fab).status == 0)
        for pid in allPids where kill(pid, 0) == 0 {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            #expect(stat.contains(") Z ") || stat.isEmpty, "qemu \(pid) still running")
        }
        let links = try NetlinkHandle(namespace: fabricNS).links().map(\.name)
        #expect(links == ["lo"], "left in the fabric: \(links)")
        #expect(!NetworkNamespace.listNamed().contains { $0.hasPrefix(name + "-") })
        #expect(!FileManager.default.fileExists(atPath: "/run/quiver/vms/\(name)"))
    }

    /// `dladm create-vnic -l LINK` for guests: two tenants' guests on macvtaps over one host link
    /// Quiver does not own (a veth end in the fabric namespace, its peer "the wire" in a namespace
    /// of the test's). The wire reaches both guests; the guests do not reach each other; the link
    /// is left exactly as it was.
    @Test func guestsOnAHostLinkAreIsolatedAndTheLinkIsLeftAlone() throws {
        try buildGuest()
        let name = "w" + String(UUID().uuidString.prefix(3)).lowercased()
        let fabricName = "qcw-" + String(UUID().uuidString.prefix(6)).lowercased()
        let fabricNS = try NetworkNamespace.create(named: fabricName)
        defer { try? NetworkNamespace.delete(named: fabricName) }
        let wire = try NetworkNamespace.create(named: fabricName + "-wire")
        defer { try? NetworkNamespace.delete(named: fabricName + "-wire") }
        let fabric = try NetlinkHandle(namespace: fabricNS)
        let wireFD = try wire.open()
        defer { try? wireFD.close() }
        let veth = Veth(peer: "eth0", peerSettings: LinkSettings(up: true, namespace: .fd(wireFD.rawValue)))
        try fabric.addLink("upl0", veth, LinkSettings(up: true, alias: "the operator's uplink"))
        let wireHandle = try NetlinkHandle(namespace: wire)
        if let up = veth.peerFollowUp { try wireHandle.perform(up) }
        try wireHandle.addAddress(try IPPrefix("10.31.0.1/24"), to: "eth0")
        let uplinkBefore = try fabric.link(named: "upl0")
        // The uplink's own address lists (what `bridge fdb show dev` prints for a non-bridge device).
        let addressesBefore = try witnessText(["ip", "netns", "exec", fabricName, "bridge", "fdb", "show", "dev", "upl0"])

        let guest = Self.repo + "/.build-guest"
        // One guest per tenant, each on a macvtap over the uplink.
        let tenants = [("red", "g3", 33), ("blue", "g4", 34)].map { tenant, host, last in
            """
              - name: \(tenant)
                hosts:
                  - name: \(host)
                    kind: vm
                    kernel: \(guest)/vmlinuz
                    initrd: \(guest)/initrd.img
                    cmdline: ipv6.disable=1
                    vnics: [{name: eth0, over: upl0, mode: macvtap, ips: [10.31.0.\(last)/24]}]
            """
        }
        let text = "name: \(name)\ntenants:\n" + tenants.joined(separator: "\n") + """

        expect:
          - reach: {from: red/g3, to: blue/g4, probe: [icmp]}
        """
        // The expectation above is wrong on purpose: verify must report it as failing.
        let file = NSTemporaryDirectory() + "quiver-\(name).yaml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fab = ["--fabric-netns", fabricName]
        defer { _ = try? quiver(["destroy", name] + fab) }

        // A host link that does not exist is refused before anything changes.
        let missing = file + ".missing.yaml"
        try text.replacingOccurrences(of: "over: upl0", with: "over: upl9").write(toFile: missing, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: missing) }
        let refused = try quiver(["apply", missing] + fab)
        #expect(refused.status == 1 && refused.stderr.contains("lower link upl9"), "\(refused.stderr)")
        #expect(try fabric.links().map(\.name).sorted() == ["lo", "upl0"])

        let apply = try quiver(["apply", file] + fab)
        #expect(apply.status == 0, "\(apply.stderr)")
        let verify = try quiver(["verify", file, "-o", "json"] + fab)
        #expect(verify.status == 1, "guest to guest across tenants must not answer: \(verify.stdout)")
        #expect(verify.stdout.contains("no echo reply"), "\(verify.stdout)")
        // The wire reaches both guests (an address in the namespace the test made).
        for ip in ["10.31.0.33", "10.31.0.34"] {
            let r = try Reach.icmpEcho(from: wire, to: try IPAddress(ip), count: 5, timeout: 1)
            #expect(r.answered, "wire → \(ip): \(r.detail)")
        }
        // Forged frames from a guest on the host link: dropped and counted.
        let spoofFile = file + ".spoof.yaml"
        try text.replacingOccurrences(of: "  - reach: {from: red/g3, to: blue/g4, probe: [icmp]}",
                                      with: "  - no-reach: {from: red/g3, to: blue/g4, probe: [icmp, arp]}\n  - no-reach: {from: blue/g4, to: red/g3}\n"
                                          + "  - spoof: {from: red/g3, kind: [mac, ip], count: 50}")
            .write(toFile: spoofFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: spoofFile) }
        let verify2 = try quiver(["verify", spoofFile] + fab)
        #expect(verify2.status == 0, "\(verify2.stdout)\(verify2.stderr)")
        #expect(try quiver(["apply", file] + fab).stdout.contains("no changes"))

        #expect(try quiver(["destroy", name] + fab).status == 0)
        let after = try fabric.link(named: "upl0")
        #expect(after.alias == uplinkBefore.alias && after.isUp && after.masterIndex == uplinkBefore.masterIndex && after.mtu == uplinkBefore.mtu)
        #expect(try fabric.links().map(\.name).sorted() == ["lo", "upl0"])
        #expect(try witnessText(["ip", "netns", "exec", fabricName, "bridge", "fdb", "show", "dev", "upl0"]) == addressesBefore)
        #expect(!FileManager.default.fileExists(atPath: "/run/quiver/vms/\(name)"))
    }
}
