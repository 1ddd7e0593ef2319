import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverTopology
import QuiverVM

/// bench/vm: boot-to-first-ping through `quiver apply` against a hand-made launch of the same
/// guest (`ip tuntap add` + `qemu -netdev tap,ifname=…,script=no`), and guest TCP throughput
/// through the tap — uncapped for both, capped for Quiver (5–20M: the TCG guest itself tops out
/// near 50 Mbit/s) — in the same run.
enum VMBenchmark {
    static let guestDir = FileManager.default.currentDirectoryPath + "/.build-guest"

    static func topology(_ name: String, cap: String?) -> String {
        """
        name: \(name)
        switches: [{name: sw}]
        tenants:
          - name: t
            hosts:
              - name: g
                kind: vm
                kernel: \(guestDir)/vmlinuz
                initrd: \(guestDir)/initrd.img
                cmdline: ipv6.disable=1
                vnics: [{name: eth0, over: sw, ips: [10.40.0.31/24]\(cap.map { ", maxbw: \($0)" } ?? "")}]
              - name: h
                vnics: [{name: net0, over: sw, ips: [10.40.0.11/24]}]
        """
    }

    /// Seconds until `host` (a namespace) gets an echo reply from the guest, polling every ~50 ms.
    /// The guest's MAC is pinned in the host's neighbour table first: otherwise unanswered ARP
    /// puts the entry in FAILED for a second at a time and rounds every boot up to whole seconds.
    static func untilPing(from ns: NetworkNamespace, guestMAC: String, start: Double) throws -> Double {
        try runCommand(["ip", "-n", ns.name!, "neigh", "replace", "10.40.0.31", "lladdr", guestMAC, "dev", "net0", "nud", "permanent"])
        let target = try IPAddress("10.40.0.31")
        let deadline = start + 120
        while now() < deadline {
            if try Reach.icmpEcho(from: ns, to: target, count: 1, timeout: 0.05).answered { return now() - start }
        }
        throw BenchError("the guest never answered")
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Guest → host TCP goodput for `seconds`, bit/s.
    static func throughput(agentSocket: String, to ns: NetworkNamespace, seconds: Int = 5) throws -> Double {
        let agent = try GuestAgent.waitReady(socketPath: agentSocket, timeout: 60)
        let sink = try TCPSink(in: ns, address: try IPAddress("10.40.0.11"), port: 5301, seconds: Double(seconds))
        _ = try agent.run("timeout \(seconds) sh -c 'cat /dev/zero | nc 10.40.0.11 5301'", timeout: Double(seconds) + 10)
        return sink.finish(warmup: 1, until: Double(seconds)).bitsPerSecond
    }

    static func run(rounds: Int) throws {
        var quiverBoot: [Double] = [], handBoot: [Double] = [], quiverTput: [Double] = [], handTput: [Double] = []
        var capped: [(String, Double)] = []
        for round in 0..<rounds {
            // Quiver: the whole topology (switch, tap, caps, rules, namespace host, qemu).
            try withBenchNamespace { fabricNS in
                let fabric = try Fabric(fabric: fabricNS)
                let name = "bv\(round)"
                let t = try TopologyParser.parse(topology(name, cap: nil), file: "/tmp/\(name).yaml")
                defer { _ = try? fabric.destroy(topology: name) }
                let start = now()
                _ = try fabric.apply(t)
                let mac = KernelNames(name).autoMAC(tenant: "t", host: "g", vnic: "eth0").description
                quiverBoot.append(try untilPing(from: .named("\(name)-t-h"), guestMAC: mac, start: start))
                quiverTput.append(try throughput(agentSocket: "\(VMLauncher.runRoot)/\(name)/g/agent.sock", to: .named("\(name)-t-h")))
                if round == 0 {
                    for cap in ["5M", "10M", "20M"] {
                        _ = try fabric.apply(try TopologyParser.parse(topology(name, cap: cap), file: "/tmp/\(name).yaml"))
                        capped.append((cap, try throughput(agentSocket: "\(VMLauncher.runRoot)/\(name)/g/agent.sock", to: .named("\(name)-t-h"))))
                    }
                }
            }
            // By hand: a bridge, a veth to a namespace host, `ip tuntap add`, qemu opening the tap itself.
            try withBenchNamespace { fabricNS in
                let f = fabricNS.name!
                let host = "\(f)-h"
                let hostNS = try NetworkNamespace.create(named: host)
                defer { try? NetworkNamespace.delete(named: host) }
                let dir = "/tmp/qbench-vm-\(getpid())-\(round)"
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: dir) }
                for cmd in [["ip", "-n", f, "link", "add", "br0", "type", "bridge"], ["ip", "-n", f, "link", "set", "br0", "up"],
                            ["ip", "-n", f, "link", "add", "vh", "type", "veth", "peer", "name", "net0", "netns", host],
                            ["ip", "-n", f, "link", "set", "vh", "master", "br0", "up"], ["ip", "-n", host, "link", "set", "net0", "up"],
                            ["ip", "-n", host, "addr", "add", "10.40.0.11/24", "dev", "net0"]] {
                    try runCommand(cmd)
                }
                let start = now()
                try runCommand(["ip", "-n", f, "tuntap", "add", "tg", "mode", "tap", "vnet_hdr"])
                try runCommand(["ip", "-n", f, "link", "set", "tg", "master", "br0", "up"])
                try runCommand(["ip", "netns", "exec", f, "qemu-system-x86_64", "-name", "guest=handmade", "-nodefaults", "-no-user-config",
                                "-nographic", "-display", "none", "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "256",
                                "-kernel", "\(guestDir)/vmlinuz", "-initrd", "\(guestDir)/initrd.img",
                                "-append", "console=ttyS0 panic=-1 quiver.net=eth0,10.40.0.31/24 ipv6.disable=1",
                                "-netdev", "tap,id=n0,ifname=tg,script=no,downscript=no,vhost=off",
                                "-device", "virtio-net-pci,netdev=n0,mac=02:00:00:40:00:31",
                                "-chardev", "file,id=c,path=\(dir)/console.log", "-serial", "chardev:c",
                                "-chardev", "socket,id=a,path=\(dir)/agent.sock,server=on,wait=off", "-serial", "chardev:a",
                                "-pidfile", "\(dir)/qemu.pid", "-daemonize"])
                defer {
                    if let p = try? String(contentsOfFile: "\(dir)/qemu.pid", encoding: .utf8), let pid = Int32(p.trimmingCharacters(in: .whitespacesAndNewlines)) {
                        kill(pid, SIGKILL)
                        while VMLauncher.isRunning(pid) { usleep(20_000) }
                    }
                }
                handBoot.append(try untilPing(from: hostNS, guestMAC: "02:00:00:40:00:31", start: start))
                handTput.append(try throughput(agentSocket: "\(dir)/agent.sock", to: hostNS))
            }
            print(String(format: "round %d: boot→ping quiver %.2f s, by hand %.2f s; guest TCP quiver %.1f Mbit/s, by hand %.1f Mbit/s",
                         round + 1, quiverBoot.last!, handBoot.last!, quiverTput.last! / 1e6, handTput.last! / 1e6))
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        print("")
        print("guest boot and network (TCG, userspace virtio-net; median of \(rounds))")
        printTable(["measure", "quiver", "by hand", "quiver/hand"], [
            ["boot → first ping (s)", String(format: "%.2f", median(quiverBoot)), String(format: "%.2f", median(handBoot)),
             String(format: "%.2f", median(quiverBoot) / median(handBoot))],
            ["guest TCP uncapped (Mbit/s)", String(format: "%.1f", median(quiverTput) / 1e6), String(format: "%.1f", median(handTput) / 1e6),
             String(format: "%.2f", median(quiverTput) / median(handTput))],
        ])
        print("")
        print("guest egress through a Quiver cap (TCP goodput; on the wire = goodput × 1514/1448)")
        printTable(["cap", "goodput Mbit/s", "wire Mbit/s", "wire/cap"], capped.map { cap, g in
            let wire = g * 1514 / 1448
            let c = Double(try! Bitrate(cap).bitsPerSecond)
            return [cap, String(format: "%.2f", g / 1e6), String(format: "%.2f", wire / 1e6), String(format: "%.3f", wire / c)]
        })
    }
}
