import Foundation
import QuiverNetlink
import QuiverProbe
import QuiverTestSupport
import QuiverValues
import Testing

/// quiver-cni under the runtime Kubernetes nodes use: Debian's containerd 1.6 with its CRI
/// plugin, called as the kubelet calls it (``CRIClient``). The pods' rates are only in their
/// `kubernetes.io/ingress-bandwidth` and `egress-bandwidth` annotations: the network's conflist
/// gives quiver-cni none, and declares `"capabilities": {"bandwidth": true}`, so every cap on
/// the wire is the runtime's own `bandwidth` capability reaching Quiver. containerd runs in a
/// network namespace the test owns (its bridge, veths and quiver-cni's IFBs are made there),
/// with its state in a temporary directory; the pods and their containers run from an image
/// built here from busybox-static (``LocalImage``), nothing downloaded. The runtime is runc;
/// `restrict_oom_score_adj` because these machines refuse the pause process's score of −998.
@Suite(.serialized) struct CNICRITrafficTests {
    @Test func podAnnotationsReachQuiverThroughContainerdAndStoppingLeavesNothing() throws {
        for tool in ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/bin/busybox", "/usr/bin/sha256sum"] + CRIClient.tools
        where !FileManager.default.isExecutableFile(atPath: tool) {
            Issue.record("\(tool) is missing (scripts/setup.sh installs containerd, runc, busybox-static, protobuf-compiler and curl)")
            return
        }
        let tag = String(UUID().uuidString.prefix(4)).lowercased()
        let dir = "/run/quiver-test-cri-\(tag)", node = "qcr-\(tag)", image = "localhost/quiver-test-pause:\(tag)"
        let fm = FileManager.default
        for d in ["net", "plugins", "image", "calls"] {
            try fm.createDirectory(atPath: "\(dir)/\(d)", withIntermediateDirectories: true)
        }
        defer { try? fm.removeItem(atPath: dir) }
        try LocalImage.busyboxRoot(at: "\(dir)/rootfs")
        let archive = try LocalImage.build(rootfs: "\(dir)/rootfs", name: image, entrypoint: ["/bin/sleep", "2147483647"],
                                           work: "\(dir)/image", archive: "\(dir)/image.tar")
        // containerd 1.6 looks for plugins in one directory.
        for p in ["bridge", "host-local", "loopback"] {
            try fm.createSymbolicLink(atPath: "\(dir)/plugins/\(p)", withDestinationPath: "\(CNICall.pluginDirectory)/\(p)")
        }
        try fm.createSymbolicLink(atPath: "\(dir)/plugins/quiver-cni", withDestinationPath: CNIChainTrafficTests.cni)
        try """
        {"cniVersion": "1.0.0", "name": "qcr", "plugins": [
          {"type": "bridge", "bridge": "qcrbr0", "isGateway": true, "ipMasq": false,
           "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.228.0.0/24"}]], "dataDir": "\(dir)/ipam"}},
          {"type": "quiver-cni", "capabilities": {"bandwidth": true}}
        ]}
        """.write(toFile: "\(dir)/net/10-qcr.conflist", atomically: true, encoding: .utf8)
        try """
        version = 2
        root = "\(dir)/root"
        state = "\(dir)/state"
        disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                            "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.overlayfs"]
        [grpc]
          address = "\(dir)/containerd.sock"
        [ttrpc]
          address = "\(dir)/containerd.sock.ttrpc"
        [plugins."io.containerd.internal.v1.opt"]
          path = "\(dir)/opt"
        [plugins."io.containerd.grpc.v1.cri"]
          sandbox_image = "\(image)"
          restrict_oom_score_adj = true
          stream_server_address = "127.0.0.1"
          stream_server_port = "0"
          [plugins."io.containerd.grpc.v1.cri".containerd]
            snapshotter = "native"
            default_runtime_name = "runc"
            [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
              runtime_type = "io.containerd.runc.v2"
              [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
                BinaryName = "/usr/sbin/runc"
                Root = "\(dir)/runc"
          [plugins."io.containerd.grpc.v1.cri".cni]
            bin_dir = "\(dir)/plugins"
            conf_dir = "\(dir)/net"
            max_conf_num = 1
        """.write(toFile: "\(dir)/config.toml", atomically: true, encoding: .utf8)
        _ = try witnessText(["ip", "netns", "add", node])
        defer { _ = try? witnessText(["ip", "netns", "del", node]) }
        _ = try witnessText(["ip", "-n", node, "link", "set", "lo", "up"])  // the CRI stream server listens on 127.0.0.1

        // containerd's output goes to a file: its shims keep what it had open.
        let logFD = open("\(dir)/containerd.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard logFD >= 0 else { Issue.record("open containerd.log: errno \(errno)"); return }
        let containerd = try Spawn.start(["/usr/bin/nsenter", "--net=/run/netns/\(node)", "/usr/bin/containerd", "--config", "\(dir)/config.toml"],
                                         descriptors: [], output: logFD)
        close(logFD)
        defer {
            kill(containerd, SIGTERM)
            var status: Int32 = 0
            for _ in 0..<100 where waitpid(containerd, &status, WNOHANG) == 0 { usleep(100_000) }
        }
        let cri = CRIClient(socket: "\(dir)/containerd.sock", scratch: "\(dir)/calls")
        var version = ""
        for _ in 0..<100 where version.isEmpty {
            if let v = try? cri.call("Version", #"version: "v1""#) { version = v } else { usleep(100_000) }
        }
        guard let runtime = CRIClient.field("runtime_version", in: version) else {
            Issue.record("containerd did not answer within 10 s: \((try? String(contentsOfFile: "\(dir)/containerd.log", encoding: .utf8)) ?? "")")
            return
        }
        print("CRI: containerd \(runtime)")
        let imported = try Spawn.run(["/usr/bin/ctr", "--address", "\(dir)/containerd.sock", "--namespace", "k8s.io", "images", "import",
                                      "--snapshotter", "native", archive], descriptors: [], captureOutput: true)
        try #require(imported.status == 0, "ctr images import: \(imported.stderr)")

        // Two pods. p1 receives at most 20M and sends at most 10M; p2 receives at most 20M and
        // sends at most 5M. So p1 → p2 is held by p1's egress cap, p2 → p1 by p2's.
        struct Pod { var name: String, sandbox: String, config: String, ip: String = "", pid: String = "", container: String = "" }
        var pods: [Pod] = []
        defer {
            for p in pods.reversed() {
                if !p.container.isEmpty { _ = try? cri.call("RemoveContainer", "container_id: \(CRIClient.quoted(p.container))") }
                _ = try? cri.call("StopPodSandbox", "pod_sandbox_id: \(CRIClient.quoted(p.sandbox))")
                _ = try? cri.call("RemovePodSandbox", "pod_sandbox_id: \(CRIClient.quoted(p.sandbox))")
            }
        }
        for (name, ingress, egress) in [("p1", "20M", "10M"), ("p2", "20M", "5M")] {
            let config = """
            metadata { name: "\(name)" uid: "\(tag)-\(name)" namespace: "quiver-test" } hostname: "\(name)"
            annotations { key: "kubernetes.io/ingress-bandwidth" value: "\(ingress)" }
            annotations { key: "kubernetes.io/egress-bandwidth" value: "\(egress)" }
            """
            let reply = try cri.call("RunPodSandbox", "config { \(config) }")
            let id = try #require(CRIClient.field("pod_sandbox_id", in: reply), "\(reply)")
            pods.append(Pod(name: name, sandbox: id, config: config))
        }
        for i in pods.indices {
            let status = try cri.call("PodSandboxStatus", "pod_sandbox_id: \(CRIClient.quoted(pods[i].sandbox)) verbose: true")
            pods[i].ip = try #require(CRIClient.field("ip", in: status), "\(status)")
            // The verbose info is JSON in a string; its pause process's pid names the namespace.
            let pid = try #require(status.firstMatch(of: /\\"pid\\":([0-9]+)/), "no pid in \(status)")
            pods[i].pid = String(pid.1)
            // A container in each pod, from the same local image, as a workload would be.
            let created = try cri.call("CreateContainer", """
                pod_sandbox_id: \(CRIClient.quoted(pods[i].sandbox))
                config { metadata { name: "c" } image { image: "\(image)" } command: "/bin/sleep" command: "600" }
                sandbox_config { \(pods[i].config) }
                """)
            pods[i].container = try #require(CRIClient.field("container_id", in: created), "\(created)")
            _ = try cri.call("StartContainer", "container_id: \(CRIClient.quoted(pods[i].container))")
        }
        // A rate that Kubernetes accepts (it allows from 1k) but HTB cannot hold: quiver-cni
        // refuses it with its own message, the pod does not start, and the runtime's DEL of the
        // chain leaves nothing of it (the checks below count two pods' worth of objects).
        do {
            _ = try cri.call("RunPodSandbox", """
                config { metadata { name: "p3" uid: "\(tag)-p3" namespace: "quiver-test" } hostname: "p3"
                annotations { key: "kubernetes.io/ingress-bandwidth" value: "1k" } }
                """)
            Issue.record("a pod with a 1k ingress cap was started")
        } catch let e as CRIFailed {
            #expect(e.message.contains("runtimeConfig.bandwidth.ingressRate 1000 is out of range"), "\(e)")
        }
        let ifbs = try witnessText(["ip", "-n", node, "-d", "link", "show", "type", "ifb"])
        #expect(ifbs.components(separatedBy: "alias quiver:cni/").count - 1 == 4, "two IFBs per pod: \(ifbs)")
        let veths = try witnessText(["ip", "-n", node, "-br", "link", "show", "type", "veth"]).split(separator: "\n")
        #expect(veths.count == 2, "one veth per started pod: \(veths)")

        let p1 = NetworkNamespace(path: "/proc/\(pods[0].pid)/ns/net"), p2 = NetworkNamespace(path: "/proc/\(pods[1].pid)/ns/net")
        let there = try TCPBulk(from: p1, to: p2, address: try IPAddress(pods[1].ip), duration: 3).run()
        let back = try TCPBulk(from: p2, to: p1, address: try IPAddress(pods[0].ip), duration: 3).run()
        print("quiver-cni under containerd's CRI: p1 → p2 \(Int(there.bitsPerSecond / 1000)) kbit/s (p1's egress annotation 10M), "
              + "p2 → p1 \(Int(back.bitsPerSecond / 1000)) kbit/s (p2's 5M); the runtime's burst was 2³²−1 bits")
        #expect(there.bitsPerSecond > 8_500_000 && there.bitsPerSecond < 10_500_000)
        #expect(back.bitsPerSecond > 4_250_000 && back.bitsPerSecond < 5_250_000)

        // Stopping and removing the pods runs the chain's DEL: nothing of theirs is left.
        for i in pods.indices {
            _ = try cri.call("StopContainer", "container_id: \(CRIClient.quoted(pods[i].container)) timeout: 0")
            _ = try cri.call("RemoveContainer", "container_id: \(CRIClient.quoted(pods[i].container))")
            pods[i].container = ""
            _ = try cri.call("StopPodSandbox", "pod_sandbox_id: \(CRIClient.quoted(pods[i].sandbox))")
            _ = try cri.call("RemovePodSandbox", "pod_sandbox_id: \(CRIClient.quoted(pods[i].sandbox))")
        }
        pods = []
        let left = try witnessText(["ip", "-n", node, "-br", "link"])
        #expect(!left.contains("veth") && !left.contains("qcf") && !left.contains("qct"), "\(left)")
        var st = stat()
        if stat("/run/netns/\(node)", &st) == 0 {
            let record = "/run/quiver/cni/net-\(st.st_ino)"
            let kept = (try? fm.contentsOfDirectory(atPath: record)) ?? []
            #expect(kept.isEmpty, "records left in \(record): \(kept)")
        }
    }
}
