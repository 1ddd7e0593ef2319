import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverTestSupport
import QuiverTopology
import QuiverVM
import Testing

/// End to end with real Debian guests under TCG: `topologies/debian-guests.yaml` under a fresh
/// name, its fabric in a namespace the test owns. red's guest boots the cloud-init image and
/// takes its network from Quiver's seed; blue's boots the image without cloud-init and takes its
/// address from blue's DHCP server. Both boot SeaBIOS from overlays of bases that stay as they
/// were, and are probed from inside through qemu-guest-agent. The images are built from Debian
/// packages by scripts/build-debian-guest.sh (cached under .build-guest/).
@Suite(.serialized) struct DebianGuestsTrafficTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    @Test func realImagesBootConfiguredIsolatedCappedAndLeaveNothing() throws {
        try buildDebianGuests()
        let images = ["cloud", "dhcp"].map { "\(Self.repo)/.build-guest/debian-12-\($0).qcow2" }
        let sums = try images.map(sha256)
        let name = "d" + String(UUID().uuidString.prefix(3)).lowercased()
        let text = try String(contentsOfFile: Self.repo + "/topologies/debian-guests.yaml", encoding: .utf8)
            .replacingOccurrences(of: "name: deb\n", with: "name: \(name)\n")
            .replacingOccurrences(of: "../.build-guest/", with: Self.repo + "/.build-guest/")
        let file = NSTemporaryDirectory() + "quiver-\(name).yaml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fabricName = "qcd-" + String(UUID().uuidString.prefix(6)).lowercased()
        _ = try NetworkNamespace.create(named: fabricName)
        defer { try? NetworkNamespace.delete(named: fabricName) }
        let fab = ["--fabric-netns", fabricName]
        defer { _ = try? quiver(["destroy", name] + fab) }

        let apply = try quiver(["apply", file] + fab)
        #expect(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
        // Each guest boots an overlay in its state directory; only red's has a seed.
        let state = "/var/lib/quiver/vms/\(name)"
        for host in ["rvm", "bvm"] { #expect(FileManager.default.fileExists(atPath: "\(state)/\(host)/overlay.qcow2"), "\(host)") }
        #expect(FileManager.default.fileExists(atPath: "\(state)/rvm/seed.iso"))
        #expect(!FileManager.default.fileExists(atPath: "\(state)/bvm/seed.iso"))
        let info = try witnessText(["qemu-img", "info", "-U", "--output=json", "\(state)/rvm/overlay.qcow2"])
        let overlay = json(info) as? [String: Any]
        #expect(overlay?["format"] as? String == "qcow2")
        #expect(overlay?["backing-filename"] as? String == images[0])
        #expect((overlay?["virtual-size"] as? NSNumber)?.int64Value == 2 << 30, "disk-size: 2G")
        // Both DHCP servers run, each in its tenant's namespace.
        for tenant in ["red", "blue"] {
            #expect(DHCPServer.running(directory: "/run/quiver/dhcp/\(name)/\(tenant)-sw0", namespace: "\(name)-\(tenant)-dhcp-sw0") != nil, "\(tenant)")
        }

        // Everything the file expects, from inside the guests: configured, reach, isolation,
        // caps, forged frames (verify waits for each guest's agent).
        let verify = try quiver(["verify", file, "-o", "json"] + fab)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let rows = ((json(verify.stdout) as? [String: Any])?["rows"] as? [[String: Any]]) ?? []
        #expect(rows.count == 11)
        #expect(rows.allSatisfy { $0["passed"] as? Bool == true }, "\(rows.filter { $0["passed"] as? Bool != true })")
        #expect(rows.contains { ($0["detail"] as? String)?.contains("reported by qemu-guest-agent") == true })

        // Nothing changed: a second apply touches no guest, overlay or DHCP server.
        let noop = try quiver(["apply", file] + fab)
        #expect(noop.status == 0 && noop.stdout.contains("no changes"), "\(noop.stdout)\(noop.stderr)")

        // blue's guest got its lease from blue's server; red's server never saw blue's MAC (the
        // isolation dropped its broadcasts before they reached red's port).
        let blueMAC = KernelNames(name).autoMAC(tenant: "blue", host: "bvm", vnic: "eth0").description
        let blueLog = try String(contentsOfFile: "/run/quiver/dhcp/\(name)/blue-sw0/dnsmasq.log", encoding: .utf8)
        let redLog = try String(contentsOfFile: "/run/quiver/dhcp/\(name)/red-sw0/dnsmasq.log", encoding: .utf8)
        #expect(blueLog.contains("DHCPACK(eth0) 10.41.0.20 \(blueMAC)"), "\(blueLog)")
        #expect(!redLog.lowercased().contains(blueMAC.lowercased()), "\(redLog)")
        #expect(!redLog.contains("DHCPOFFER"), "red's server offered nothing: \(redLog)")

        // apply is the DHCP servers' supervisor: one that died is started again, and only it.
        let blueDir = "/run/quiver/dhcp/\(name)/blue-sw0", blueNS = "\(name)-blue-dhcp-sw0"
        let dead = try #require(DHCPServer.running(directory: blueDir, namespace: blueNS)).pid
        kill(dead, SIGKILL)
        for _ in 0..<100 where VMLauncher.isRunning(dead) { usleep(20_000) }
        let revived = try quiver(["apply", file] + fab)
        #expect(revived.status == 0 && revived.stdout.contains("created 1, changed 0, deleted 1 in"), "\(revived.stdout)\(revived.stderr)")
        #expect(DHCPServer.running(directory: blueDir, namespace: blueNS).map { $0.pid != dead } == true)

        // `vm list`: the agents answer, with the addresses the guests report.
        let list = try quiver(["vm", "list"])
        #expect(list.stdout.contains("\(name)/bvm: guest reports eth0 \(blueMAC) 10.41.0.20/24"), "\(list.stdout)")
        #expect(list.stdout.components(separatedBy: "qga: answers").count - 1 >= 2, "\(list.stdout)")

        // `quiver vm exec`: a program in the guest, its output and its exit status.
        let exec = try quiver(["vm", "exec", "\(name)/rvm", "--", "ip", "-br", "addr", "show", "eth0"])
        #expect(exec.status == 0 && exec.stdout.contains("10.40.0.10/24") && exec.stdout.contains("fd40::10/64"), "\(exec.stdout)\(exec.stderr)")
        #expect(try quiver(["vm", "exec", "\(name)/rvm", "--", "sh", "-c", "exit 3"]).status == 3)

        // A file written in a guest survives `quiver vm stop` and the apply that starts it again.
        let socket = "/run/quiver/vms/\(name)/bvm/qga.sock"
        let marker = "kept-\(UUID().uuidString.prefix(8))"
        let wrote = try QGAClient(socketPath: socket).run("echo \(marker) > /root/marker && sync", timeout: 20)
        #expect(wrote.status == 0, "\(wrote.output)")
        let overlayInode = try FileManager.default.attributesOfItem(atPath: "\(state)/bvm/overlay.qcow2")[.systemFileNumber] as? Int
        let stop = try quiver(["vm", "stop", "\(name)/bvm"])
        #expect(stop.stdout.contains("stopped"), "\(stop.stdout)\(stop.stderr)")
        let again = try quiver(["apply", file] + fab)
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        let agent = try QGAClient.waitReady(socketPath: socket, timeout: 240)
        #expect(try agent.run("cat /root/marker", timeout: 20).output == marker)
        #expect(try FileManager.default.attributesOfItem(atPath: "\(state)/bvm/overlay.qcow2")[.systemFileNumber] as? Int == overlayInode,
                "the overlay was kept, not made anew")

        // Another image for blue's guest: its overlay is made anew, and apply says so.
        try text.replacingOccurrences(of: "debian-12-dhcp.qcow2", with: "debian-12-cloud.qcow2").write(toFile: file, atomically: true, encoding: .utf8)
        let swapped = try quiver(["apply", file] + fab)
        #expect(swapped.status == 0, "\(swapped.stderr)")
        #expect(swapped.stdout.contains("note: guest bvm: overlay made anew: its image changed from \(images[1]) to \(images[0]); what the guest had written to its disk is gone"),
                "\(swapped.stdout)")

        // destroy: no qemu, dnsmasq, overlay, seed, tap or namespace of the topology is left.
        let destroy = try quiver(["destroy", name] + fab)
        #expect(destroy.status == 0, "\(destroy.stderr)")
        #expect(!FileManager.default.fileExists(atPath: state))
        #expect(!FileManager.default.fileExists(atPath: "/run/quiver/dhcp/\(name)"))
        #expect(!FileManager.default.fileExists(atPath: "/run/quiver/vms/\(name)"))
        let ps = try witnessText(["ps", "-eo", "stat=,args="])
        let live = ps.split(separator: "\n").filter { !$0.hasPrefix("Z") }
        #expect(!live.contains { $0.contains("guest=\(name)-") }, "a qemu of \(name) is left")
        #expect(!live.contains { $0.contains("dnsmasq") && $0.contains("/proc/self/fd/3") }, "a dnsmasq is left")
        let namespaces = try witnessText(["ip", "netns", "list"])
        #expect(!namespaces.contains("\(name)-"), "\(namespaces)")
        let links = try witnessText(["ip", "netns", "exec", fabricName, "ip", "-br", "link"])
        #expect(!links.contains("\(name)-") && !links.contains("\(name).d"), "\(links)")
        // The bases were never written.
        #expect(try images.map(sha256) == sums)
    }
}
