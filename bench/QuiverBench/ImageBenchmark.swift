import Foundation
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverTopology
import QuiverVM

/// bench/vm image: the Debian cloud image (scripts/build-debian-guest.sh) booted by `quiver apply`
/// — overlay, seed, jail, tap, SeaBIOS — against a hand-made launch of the same image: `qemu-img
/// create` of an overlay, a `cloud-localds` seed with the same network-config, a tap made with
/// `ip tuntap` on a bridge, `qemu -drive file=… -netdev tap,ifname=…,script=no`. Rounds
/// alternate which goes first. Measured per launch: until the guest answers a ping from the
/// namespace host; until qemu-guest-agent reports the configured address (cloud-init's network
/// up, read through QGA); guest TCP throughput through the tap. Then Quiver's overlay + seed
/// preparation on its own, and the guest's egress through caps.
enum ImageBenchmark {
    static let image = FileManager.default.currentDirectoryPath + "/.build-guest/debian-12-cloud.qcow2"
    static let guestMAC = "02:00:00:40:00:31"

    static func topology(_ name: String, cap: String?) -> String {
        """
        name: \(name)
        switches: [{name: sw}]
        tenants:
          - name: t
            hosts:
              - name: g
                kind: vm
                image: \(image)
                memory: 1024
                cpus: 2
                accel: tcg
                vnics: [{name: eth0, over: sw, mac: "\(guestMAC)", ips: [10.40.0.31/24]\(cap.map { ", maxbw: \($0)" } ?? "")}]
              - name: h
                vnics: [{name: net0, over: sw, ips: [10.40.0.11/24]}]
        """
    }

    static func now() -> Double { VMBenchmark.now() }

    /// Until qemu-guest-agent answers and reports 10.40.0.31 on eth0.
    static func untilConfigured(_ socket: String, start: Double) throws -> Double {
        while now() < start + 240 {
            if let qga = try? QGAClient(socketPath: socket, timeout: 1),
               let i = try? qga.interfaces(), i.contains(where: { $0.name == "eth0" && $0.addresses.contains("10.40.0.31/24") }) {
                return now() - start
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw BenchError("qemu-guest-agent never reported the address")
    }

    /// Guest → host TCP goodput for `seconds`, bit/s (nc in the guest through qemu-guest-agent).
    static func throughput(_ socket: String, to ns: NetworkNamespace, seconds: Int = 5) throws -> Double {
        let qga = try QGAClient.waitReady(socketPath: socket, timeout: 120)
        let sink = try TCPSink(in: ns, address: try IPAddress("10.40.0.11"), port: 5301, seconds: Double(seconds))
        _ = try qga.run("timeout \(seconds) nc 10.40.0.11 5301 </dev/zero", timeout: Double(seconds) + 15)
        return sink.finish(warmup: 1, until: Double(seconds)).bitsPerSecond
    }

    struct Series {
        var ping: [Double] = [], configured: [Double] = [], tput: [Double] = []
    }

    static func quiverRound(_ round: Int, caps: [String], capped: inout [(String, Double)], into s: inout Series) throws {
        try withBenchNamespace { fabricNS in
            let fabric = try Fabric(fabric: fabricNS)
            let name = "bi\(round)"
            defer { _ = try? fabric.destroy(topology: name) }
            let start = now()
            _ = try fabric.apply(try TopologyParser.parse(topology(name, cap: nil), file: "/tmp/\(name).yaml"))
            let host = NetworkNamespace.named("\(name)-t-h")
            s.ping.append(try VMBenchmark.untilPing(from: host, guestMAC: guestMAC, start: start))
            let socket = "\(VMLauncher.runRoot)/\(name)/g/qga.sock"
            s.configured.append(try untilConfigured(socket, start: start))
            s.tput.append(try throughput(socket, to: host))
            for cap in caps {
                _ = try fabric.apply(try TopologyParser.parse(topology(name, cap: cap), file: "/tmp/\(name).yaml"))
                capped.append((cap, try throughput(socket, to: host)))
            }
        }
    }

    /// By hand, as a user of plain qemu would: overlay, seed, bridge, tap, qemu opening them all.
    static func handRound(_ round: Int, into s: inout Series) throws {
        try VMBenchmark.byHand("img", round) { f, hostNS, dir in
            try "instance-id: hand-\(round)\nlocal-hostname: g\n".write(toFile: "\(dir)/meta-data", atomically: true, encoding: .utf8)
            try "#cloud-config\n{}\n".write(toFile: "\(dir)/user-data", atomically: true, encoding: .utf8)
            try "version: 2\nethernets:\n  eth0:\n    match: {macaddress: \"\(guestMAC)\"}\n    set-name: eth0\n    addresses: [10.40.0.31/24]\n"
                .write(toFile: "\(dir)/network-config", atomically: true, encoding: .utf8)
            let start = now()
            try runCommand(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", image, "\(dir)/overlay.qcow2"])
            try runCommand(["cloud-localds", "-N", "\(dir)/network-config", "\(dir)/seed.iso", "\(dir)/user-data", "\(dir)/meta-data"])
            try runCommand(["ip", "-n", f, "tuntap", "add", "tg", "mode", "tap", "vnet_hdr"])
            try runCommand(["ip", "-n", f, "link", "set", "tg", "master", "br0", "up"])
            try runCommand(["ip", "netns", "exec", f, "qemu-system-x86_64", "-name", "guest=handmade-img", "-nodefaults", "-no-user-config",
                            "-nographic", "-display", "none", "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "2",
                            "-drive", "file=\(dir)/overlay.qcow2,if=virtio,format=qcow2", "-drive", "file=\(dir)/seed.iso,if=virtio,format=raw,readonly=on",
                            "-netdev", "tap,id=n0,ifname=tg,script=no,downscript=no,vhost=off", "-device", "virtio-net-pci,netdev=n0,mac=\(guestMAC),romfile=",
                            "-chardev", "file,id=c,path=\(dir)/console.log", "-serial", "chardev:c",
                            "-device", "virtio-serial-pci", "-chardev", "socket,id=qga,path=\(dir)/qga.sock,server=on,wait=off",
                            "-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0",
                            "-pidfile", "\(dir)/qemu.pid", "-daemonize"])
            defer { VMBenchmark.killQemu(pidfile: "\(dir)/qemu.pid") }
            s.ping.append(try VMBenchmark.untilPing(from: hostNS, guestMAC: guestMAC, start: start))
            s.configured.append(try untilConfigured("\(dir)/qga.sock", start: start))
            s.tput.append(try throughput("\(dir)/qga.sock", to: hostNS))
        }
    }

    /// Quiver's overlay + seed for one guest, cold (no overlay yet), `n` times, ms each.
    static func preparation(_ n: Int) throws -> [Double] {
        let root = "/run/quiver-bench-prep-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var spec = VMSpec(name: "bench-g", kernel: nil,
                          nics: [VMNIC(tap: "bench-g-eth0", mac: try MACAddress(guestMAC), guestDevice: "eth0", addresses: [try IPPrefix("10.40.0.31/24")])])
        spec.image = ImageSpec(path: image)
        let seed = SeedSpec(hostname: "g")
        var out: [Double] = []
        for i in 0..<n {
            let t0 = now()
            let state = try GuestState.open("\(root)/\(i)", create: true)!
            let base = try GuestFile.open(image, .read, owner: nil)
            defer { try? base.close() }
            _ = try GuestOverlay.prepare(base: base, path: image, info: try DiskImage.inspect(base.rawValue), size: nil, in: state)
            try state.write(GuestState.Entry.seed.rawValue, try CloudSeed(spec, seed: seed).image())
            out.append((now() - t0) * 1000)
        }
        return out
    }

    /// One boot, then each cap in turn, `samples` transfers each: the guest's egress against its cap.
    static func caps(_ caps: [String], samples: Int) throws {
        var rows: [[String]] = []
        try withBenchNamespace { fabricNS in
            let fabric = try Fabric(fabric: fabricNS)
            defer { _ = try? fabric.destroy(topology: "bic") }
            _ = try fabric.apply(try TopologyParser.parse(topology("bic", cap: nil), file: "/tmp/bic.yaml"))
            let socket = "\(VMLauncher.runRoot)/bic/g/qga.sock", host = NetworkNamespace.named("bic-t-h")
            for cap in caps {
                _ = try fabric.apply(try TopologyParser.parse(topology("bic", cap: cap), file: "/tmp/bic.yaml"))
                let c = Double(try Bitrate(cap).bitsPerSecond)
                let wire = try (0..<samples).map { _ in try throughput(socket, to: host) * 1514 / 1448 / c }
                rows.append([cap, wire.map { String(format: "%.3f", $0) }.joined(separator: " "), String(format: "%.3f", wire.sorted()[wire.count / 2])])
            }
        }
        print("guest egress through a Quiver cap, wire/cap per 5 s transfer (on the wire = TCP goodput × 1514/1448)")
        printTable(["cap", "samples", "median"], rows)
    }

    static func run(rounds: Int) throws {
        var quiver = Series(), hand = Series()
        var capped: [(String, Double)] = []
        for round in 0..<rounds {
            let caps = round == 0 ? ["20M", "50M"] : []
            if round % 2 == 0 {
                try quiverRound(round, caps: caps, capped: &capped, into: &quiver)
                try handRound(round, into: &hand)
            } else {
                try handRound(round, into: &hand)
                try quiverRound(round, caps: caps, capped: &capped, into: &quiver)
            }
            print(String(format: "round %d: ping quiver %.1f s, by hand %.1f s; configured quiver %.1f s, by hand %.1f s; TCP quiver %.1f, by hand %.1f Mbit/s",
                         round + 1, quiver.ping.last!, hand.ping.last!, quiver.configured.last!, hand.configured.last!,
                         quiver.tput.last! / 1e6, hand.tput.last! / 1e6))
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        func range(_ v: [Double], _ scale: Double = 1) -> String { String(format: "%.1f–%.1f", v.min()! / scale, v.max()! / scale) }
        print("")
        print("Debian cloud image under TCG, -m 1024 -smp 2, userspace virtio-net (median of \(rounds); ranges)")
        printTable(["measure", "quiver", "by hand", "quiver/hand", "quiver range", "by hand range"], [
            ["apply/launch → first ping (s)", String(format: "%.1f", median(quiver.ping)), String(format: "%.1f", median(hand.ping)),
             String(format: "%.2f", median(quiver.ping) / median(hand.ping)), range(quiver.ping), range(hand.ping)],
            ["→ address reported by QGA (s)", String(format: "%.1f", median(quiver.configured)), String(format: "%.1f", median(hand.configured)),
             String(format: "%.2f", median(quiver.configured) / median(hand.configured)), range(quiver.configured), range(hand.configured)],
            ["guest TCP uncapped (Mbit/s)", String(format: "%.1f", median(quiver.tput) / 1e6), String(format: "%.1f", median(hand.tput) / 1e6),
             String(format: "%.2f", median(quiver.tput) / median(hand.tput)), range(quiver.tput, 1e6), range(hand.tput, 1e6)],
        ])
        let prep = try preparation(10)
        print("")
        print(String(format: "overlay + seed prepared (qemu-img info + create, cloud-localds), cold: median %.1f ms, range %@ ms over 10",
                     median(prep), range(prep)))
        print("")
        print("guest egress through a Quiver cap (TCP goodput; on the wire = goodput × 1514/1448)")
        printTable(["cap", "goodput Mbit/s", "wire Mbit/s", "wire/cap"], capped.map { cap, g in
            let wire = g * 1514 / 1448
            return [cap, String(format: "%.2f", g / 1e6), String(format: "%.2f", wire / 1e6), String(format: "%.3f", wire / Double(try! Bitrate(cap).bitsPerSecond))]
        })
    }
}
