import Foundation
import Glibc
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverTopology
import QuiverVM

/// bench/vm: boot-to-first-ping through `quiver apply` against a hand-made launch of the same
/// guest (`ip tuntap add` + `qemu -netdev tap,ifname=…,script=no`; for a macvtap `ip link add …
/// type macvtap` + `qemu -netdev tap,fd=3 3<>/dev/tapN`), and guest TCP throughput through the
/// tap or macvtap — uncapped for both, capped for Quiver (5–20M, well under what the TCG guest
/// itself can send) — in the same run. Quiver's rounds run twice, qemu jailed and unconfined
/// (`Fabric.confineGuests`), alternating which goes first: what the jail costs.
enum VMBenchmark {
    static let guestDir = FileManager.default.currentDirectoryPath + "/.build-guest"

    static func topology(_ name: String, cap: String?, macvtap: Bool = false) -> String {
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
                vnics: [{name: eth0, over: sw, ips: [10.40.0.31/24]\(macvtap ? ", mode: macvtap" : "")\(cap.map { ", maxbw: \($0)" } ?? "")}]
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
        _ = try agent.run("timeout \(seconds) nc 10.40.0.11 5301 </dev/zero", timeout: Double(seconds) + 10)
        return sink.finish(warmup: 1, until: Double(seconds)).bitsPerSecond
    }

    struct Series {
        var quiverBoot: [Double] = [], handBoot: [Double] = [], quiverTput: [Double] = [], handTput: [Double] = []
        var capped: [(String, Double)] = []
        var openBoot: [Double] = [], openTput: [Double] = []
        /// The guests phase of the apply (qemu started until it answers on QMP), ms.
        var jailedStart: [Double] = [], openStart: [Double] = []
    }

    /// Quiver: the whole topology (switch, tap or macvtap, caps, rules, namespace host, qemu).
    static func quiverRound(_ round: Int, macvtap: Bool, caps: [String], confine: Bool = true, into s: inout Series) throws {
        try withBenchNamespace { fabricNS in
            var fabric = try Fabric(fabric: fabricNS)
            fabric.confineGuests = confine
            let name = "bv\(round)\(macvtap ? "m" : "")\(confine ? "" : "o")"
            let t = try TopologyParser.parse(topology(name, cap: nil, macvtap: macvtap), file: "/tmp/\(name).yaml")
            defer { _ = try? fabric.destroy(topology: name) }
            let start = now()
            let applied = try fabric.apply(t)
            let started = applied.phases.first { $0.0 == "guests" }?.1 ?? .nan
            if confine { s.jailedStart.append(started) } else { s.openStart.append(started) }
            let mac = KernelNames(name).autoMAC(tenant: "t", host: "g", vnic: "eth0").description
            let boot = try untilPing(from: .named("\(name)-t-h"), guestMAC: mac, start: start)
            let tput = try throughput(agentSocket: "\(VMLauncher.runRoot)/\(name)/g/agent.sock", to: .named("\(name)-t-h"))
            if confine { s.quiverBoot.append(boot); s.quiverTput.append(tput) } else { s.openBoot.append(boot); s.openTput.append(tput) }
            for cap in caps {
                _ = try fabric.apply(try TopologyParser.parse(topology(name, cap: cap, macvtap: macvtap), file: "/tmp/\(name).yaml"))
                s.capped.append((cap, try throughput(agentSocket: "\(VMLauncher.runRoot)/\(name)/g/agent.sock", to: .named("\(name)-t-h"))))
            }
        }
    }

    /// By hand: a bridge, a veth to a namespace host, then `ip tuntap add` and qemu opening the
    /// tap itself — or `ip link add … type macvtap` and qemu given `/dev/tapN` by the shell.
    static func handRound(_ round: Int, macvtap: Bool, into s: inout Series) throws {
        try VMBenchmark.byHand("vm", round) { f, hostNS, dir in
            let mac = "02:00:00:40:00:31"
            let start = now()
            var netdev = "tap,id=n0,ifname=tg,script=no,downscript=no,vhost=off"
            var prefix = ["ip", "netns", "exec", f]
            if macvtap {
                // An index no other namespace's /dev/tapN uses, as Quiver picks one.
                var index = 3000 + round
                while access("/dev/tap\(index)", F_OK) == 0 { index += 1 }
                try runCommand(["ip", "-n", f, "link", "add", "link", "br0", "name", "mg", "index", "\(index)", "address", mac,
                                "type", "macvtap", "mode", "bridge"])
                try runCommand(["ip", "-n", f, "link", "set", "mg", "up"])
                netdev = "tap,id=n0,fd=3,vhost=off"
                prefix = ["ip", "netns", "exec", f, "sh", "-c", "exec \"$@\" 3<>/dev/tap\(index)", "qemu"]
            } else {
                try runCommand(["ip", "-n", f, "tuntap", "add", "tg", "mode", "tap", "vnet_hdr"])
                try runCommand(["ip", "-n", f, "link", "set", "tg", "master", "br0", "up"])
            }
            try runCommand(prefix + ["qemu-system-x86_64", "-name", "guest=handmade", "-nodefaults", "-no-user-config",
                                     "-nographic", "-display", "none", "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "256",
                                     "-kernel", "\(guestDir)/vmlinuz", "-initrd", "\(guestDir)/initrd.img",
                                     "-append", "console=ttyS0 panic=-1 quiver.net=eth0,10.40.0.31/24 ipv6.disable=1",
                                     "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,mac=\(mac)",
                                     "-chardev", "file,id=c,path=\(dir)/console.log", "-serial", "chardev:c",
                                     "-chardev", "socket,id=a,path=\(dir)/agent.sock,server=on,wait=off", "-serial", "chardev:a",
                                     "-pidfile", "\(dir)/qemu.pid", "-daemonize"])
            defer { VMBenchmark.killQemu(pidfile: "\(dir)/qemu.pid") }
            s.handBoot.append(try untilPing(from: hostNS, guestMAC: mac, start: start))
            s.handTput.append(try throughput(agentSocket: "\(dir)/agent.sock", to: hostNS))
        }
    }

    /// A hand-made launch's scene: a fabric namespace `f` with the hand-made switch, a namespace
    /// host, a scratch directory — all removed afterwards.
    static func byHand(_ tag: String, _ round: Int, _ body: (String, NetworkNamespace, String) throws -> Void) throws {
        try withBenchNamespace { fabricNS in
            let f = fabricNS.name!
            let host = "\(f)-h"
            let hostNS = try NetworkNamespace.create(named: host)
            defer { try? NetworkNamespace.delete(named: host) }
            let dir = "/tmp/qbench-\(tag)-\(getpid())-\(round)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try handSwitch(f, host: host)
            try body(f, hostNS, dir)
        }
    }

    /// The hand-made fabric: a bridge `br0` in `f`, a veth from it to `net0` (10.40.0.11/24) in
    /// the namespace `host`, all up — what `ip` would make.
    static func handSwitch(_ f: String, host: String) throws {
        for cmd in [["ip", "-n", f, "link", "add", "br0", "type", "bridge"], ["ip", "-n", f, "link", "set", "br0", "up"],
                    ["ip", "-n", f, "link", "add", "vh", "type", "veth", "peer", "name", "net0", "netns", host],
                    ["ip", "-n", f, "link", "set", "vh", "master", "br0", "up"], ["ip", "-n", host, "link", "set", "net0", "up"],
                    ["ip", "-n", host, "addr", "add", "10.40.0.11/24", "dev", "net0"]] {
            try runCommand(cmd)
        }
    }

    /// Kills the qemu whose pid `pidfile` holds, and waits until it is gone.
    static func killQemu(pidfile: String) {
        guard let p = try? String(contentsOfFile: pidfile, encoding: .utf8), let pid = Int32(p.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        Glibc.kill(pid, SIGKILL)
        while VMLauncher.isRunning(pid) { usleep(20_000) }
    }

    static func run(rounds: Int) throws {
        var tap = Series(), mvt = Series()
        for round in 0..<rounds {
            // Jailed and unconfined alternate which goes first, round by round.
            let order = round % 2 == 0 ? [true, false] : [false, true]
            for confine in order { try quiverRound(round, macvtap: false, caps: round == 0 && confine ? ["5M", "10M", "20M"] : [], confine: confine, into: &tap) }
            try handRound(round, macvtap: false, into: &tap)
            for confine in order { try quiverRound(round, macvtap: true, caps: round == 0 && confine ? ["5M", "10M", "20M"] : [], confine: confine, into: &mvt) }
            try handRound(round, macvtap: true, into: &mvt)
            for (what, s) in [("tap", tap), ("macvtap", mvt)] {
                print(String(format: "round %d %@: boot→ping quiver %.2f s, by hand %.2f s; guest TCP quiver %.1f Mbit/s, by hand %.1f Mbit/s",
                             round + 1, what, s.quiverBoot.last!, s.handBoot.last!, s.quiverTput.last! / 1e6, s.handTput.last! / 1e6))
            }
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        print("")
        print("guest boot and network (TCG, userspace virtio-net; median of \(rounds))")
        printTable(["measure", "quiver", "by hand", "quiver/hand"], [("tap", tap), ("macvtap", mvt)].flatMap { what, s in [
            ["\(what): boot → first ping (s)", String(format: "%.2f", median(s.quiverBoot)), String(format: "%.2f", median(s.handBoot)),
             String(format: "%.2f", median(s.quiverBoot) / median(s.handBoot))],
            ["\(what): guest TCP uncapped (Mbit/s)", String(format: "%.1f", median(s.quiverTput) / 1e6), String(format: "%.1f", median(s.handTput) / 1e6),
             String(format: "%.2f", median(s.quiverTput) / median(s.handTput))],
        ] })
        print("")
        print("what the jail costs: the same apply, qemu jailed against unconfined (median of \(rounds); ranges)")
        func range(_ v: [Double], _ scale: Double) -> String { String(format: "%.2f–%.2f", v.min()! / scale, v.max()! / scale) }
        printTable(["measure", "jailed", "unconfined", "jailed/unconfined", "jailed range", "unconfined range"], [("tap", tap), ("macvtap", mvt)].flatMap { what, s in [
            ["\(what): qemu start until QMP (ms)", String(format: "%.1f", median(s.jailedStart)), String(format: "%.1f", median(s.openStart)),
             String(format: "%.3f", median(s.jailedStart) / median(s.openStart)), range(s.jailedStart, 1), range(s.openStart, 1)],
            ["\(what): boot → first ping (s)", String(format: "%.3f", median(s.quiverBoot)), String(format: "%.3f", median(s.openBoot)),
             String(format: "%.3f", median(s.quiverBoot) / median(s.openBoot)), range(s.quiverBoot, 1), range(s.openBoot, 1)],
            ["\(what): guest TCP uncapped (Mbit/s)", String(format: "%.1f", median(s.quiverTput) / 1e6), String(format: "%.1f", median(s.openTput) / 1e6),
             String(format: "%.3f", median(s.quiverTput) / median(s.openTput)), range(s.quiverTput, 1e6), range(s.openTput, 1e6)],
        ] })
        print("")
        print("guest egress through a Quiver cap (TCP goodput; on the wire = goodput × 1514/1448)")
        printTable(["nic", "cap", "goodput Mbit/s", "wire Mbit/s", "wire/cap"], [("tap", tap), ("macvtap", mvt)].flatMap { what, s in
            s.capped.map { cap, g in
                let wire = g * 1514 / 1448
                let c = Double(try! Bitrate(cap).bitsPerSecond)
                return [what, cap, String(format: "%.2f", g / 1e6), String(format: "%.2f", wire / 1e6), String(format: "%.3f", wire / c)]
            }
        })
    }

    /// Guest TCP throughput only, jailed against unconfined: per round, one guest of each kind in
    /// turn (alternating which first), `samples` transfers of 4 s each from the same boot.
    static func jailThroughput(rounds: Int, samples: Int = 3) throws {
        var jailed: [Double] = [], open: [Double] = []
        for round in 0..<rounds {
            for confine in round % 2 == 0 ? [true, false] : [false, true] {
                try withBenchNamespace { fabricNS in
                    var fabric = try Fabric(fabric: fabricNS)
                    fabric.confineGuests = confine
                    let name = "bj\(round)\(confine ? "j" : "o")"
                    let t = try TopologyParser.parse(topology(name, cap: nil), file: "/tmp/\(name).yaml")
                    defer { _ = try? fabric.destroy(topology: name) }
                    _ = try fabric.apply(t)
                    for _ in 0..<samples {
                        let r = try throughput(agentSocket: "\(VMLauncher.runRoot)/\(name)/g/agent.sock", to: .named("\(name)-t-h"), seconds: 4)
                        if confine { jailed.append(r) } else { open.append(r) }
                    }
                }
            }
            print(String(format: "round %d: jailed %@, unconfined %@ Mbit/s", round + 1,
                         jailed.suffix(samples).map { String(format: "%.1f", $0 / 1e6) }.joined(separator: " "),
                         open.suffix(samples).map { String(format: "%.1f", $0 / 1e6) }.joined(separator: " ")))
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
        print("")
        print("guest TCP (tap, uncapped), jailed against unconfined: \(jailed.count) transfers each")
        printTable(["", "jailed", "unconfined", "jailed/unconfined"], [
            ["median (Mbit/s)", String(format: "%.1f", median(jailed) / 1e6), String(format: "%.1f", median(open) / 1e6), String(format: "%.3f", median(jailed) / median(open))],
            ["mean (Mbit/s)", String(format: "%.1f", mean(jailed) / 1e6), String(format: "%.1f", mean(open) / 1e6), String(format: "%.3f", mean(jailed) / mean(open))],
            ["range (Mbit/s)", String(format: "%.1f–%.1f", jailed.min()! / 1e6, jailed.max()! / 1e6), String(format: "%.1f–%.1f", open.min()! / 1e6, open.max()! / 1e6), ""],
        ])
    }
}
