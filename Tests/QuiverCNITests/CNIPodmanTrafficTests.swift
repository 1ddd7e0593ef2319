import Foundation
import QuiverNetlink
import QuiverProbe
import QuiverTestSupport
import QuiverValues
import Testing

/// quiver-cni under a real container runtime: Debian's podman 4.3 with its CNI backend (Debian 12
/// ships no netavark, so CNI is what it uses) and runc — crun 1.8, podman's default, refuses this
/// kernel's hybrid cgroup layout. podman itself runs in a network namespace the test owns, so its
/// bridge, veths and quiver-cni's IFBs are made there; its storage is a temporary directory and
/// the two containers run from a local busybox-static root filesystem (nothing downloaded).
/// podman 4.3's CNI backend passes no `bandwidth` capability (only ips, aliases and port
/// mappings), so the rates come from the plugin entry of the network's conflist.
@Suite(.serialized) struct CNIPodmanTrafficTests {
    @Test func twoContainersCappedAndStoppingLeavesNothing() throws {
        for tool in ["/usr/bin/podman", "/usr/sbin/runc", "/bin/busybox"] where !FileManager.default.isExecutableFile(atPath: tool) {
            Issue.record("\(tool) is missing (scripts/setup.sh installs podman, runc and busybox-static)")
            return
        }
        let tag = String(UUID().uuidString.prefix(4)).lowercased()
        let dir = "/run/quiver-test-podman-\(tag)", node = "qpd-\(tag)"
        let fm = FileManager.default
        for d in ["net", "plugins", "root", "runroot"] {
            try fm.createDirectory(atPath: "\(dir)/\(d)", withIntermediateDirectories: true)
        }
        defer { try? fm.removeItem(atPath: dir) }
        try LocalImage.busyboxRoot(at: "\(dir)/rootfs")
        try fm.createSymbolicLink(atPath: "\(dir)/plugins/quiver-cni", withDestinationPath: CNIChainTrafficTests.cni)
        try """
        [network]
        network_backend = "cni"
        cni_plugin_dirs = ["\(CNICall.pluginDirectory)", "\(dir)/plugins"]
        network_config_dir = "\(dir)/net"
        """.write(toFile: "\(dir)/containers.conf", atomically: true, encoding: .utf8)
        try """
        {"cniVersion": "1.0.0", "name": "qpd", "plugins": [
          {"type": "bridge", "bridge": "qpdbr0", "isGateway": true, "ipMasq": false,
           "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.227.0.0/24"}]], "dataDir": "\(dir)/ipam"}},
          {"type": "quiver-cni", "ingressRate": 10000000, "egressRate": 10000000, "ingressBurst": 2147483647, "egressBurst": 2147483647,
           "capabilities": {"bandwidth": true}}
        ]}
        """.write(toFile: "\(dir)/net/qpd.conflist", atomically: true, encoding: .utf8)
        _ = try witnessText(["ip", "netns", "add", node])
        defer { _ = try? witnessText(["ip", "netns", "del", node]) }

        // podman runs through posix_spawn with its output in a file and is waited for with
        // waitpid: `run -d` leaves conmon holding every descriptor podman had, so neither a pipe's
        // end nor Foundation's exit notification would come.
        func podman(_ args: [String]) throws -> String {
            let out = "\(dir)/podman.out"
            let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw PodmanFailed(command: "open \(out)", status: errno) }
            let pid = try Spawn.start(["/usr/bin/env", "CONTAINERS_CONF=\(dir)/containers.conf", "/usr/bin/nsenter", "--net=/run/netns/\(node)",
                                       "/usr/bin/podman", "--log-level", "error", "--root", "\(dir)/root", "--runroot", "\(dir)/runroot", "--tmpdir", "\(dir)/tmp",
                                       "--storage-driver", "vfs", "--network-config-dir", "\(dir)/net", "--runtime", "/usr/sbin/runc"] + args,
                                      descriptors: [], output: fd)
            close(fd)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let text = try String(contentsOfFile: out, encoding: .utf8)
            guard status == 0 else { throw PodmanFailed(command: args.joined(separator: " ") + ": " + text, status: status) }
            return text
        }
        defer { _ = try? podman(["rm", "-af", "-t", "0"]) }
        for c in ["c1", "c2"] {
            _ = try podman(["run", "-d", "--name", "\(c)-\(tag)", "--network", "qpd", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                            "--rootfs", "\(dir)/rootfs", "/bin/sleep", "600"])
        }
        let ifbs = try witnessText(["ip", "-n", node, "-d", "link", "show", "type", "ifb"])
        #expect(ifbs.components(separatedBy: "alias quiver:cni/").count - 1 == 4, "two IFBs per container: \(ifbs)")
        let inspect = try podman(["inspect", "-f", "{{.NetworkSettings.SandboxKey}} {{.NetworkSettings.Networks.qpd.IPAddress}}", "c1-\(tag)", "c2-\(tag)"])
            .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        guard inspect.count == 2, inspect.allSatisfy({ $0.count == 2 }) else { Issue.record("podman inspect: \(inspect)"); return }
        // Traffic between the two containers, in their own namespaces: c1 → c2 crosses c1's
        // egress cap and c2's ingress cap, both 10M.
        let bulk = try TCPBulk(from: NetworkNamespace(path: inspect[0][0]), to: NetworkNamespace(path: inspect[1][0]),
                               address: try IPAddress(inspect[1][1]), duration: 3).run()
        print("quiver-cni under podman: c1 → c2 \(Int(bulk.bitsPerSecond / 1000)) kbit/s (caps 10M, Kubernetes' default burst)")
        #expect(bulk.bitsPerSecond > 8_500_000 && bulk.bitsPerSecond < 10_500_000)

        // Stopping the containers runs the chain's DEL: nothing of theirs is left on the node.
        _ = try podman(["stop", "-t", "0", "c1-\(tag)", "c2-\(tag)"])
        let left = try witnessText(["ip", "-n", node, "-br", "link"])
        #expect(!left.contains("veth") && !left.contains("qcf") && !left.contains("qct"), "\(left)")
    }
}

struct PodmanFailed: Error, CustomStringConvertible {
    var command: String
    var status: Int32
    var description: String { "podman \(command) exited \(status)" }
}
