import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverVM
import Testing

/// The test guest (scripts/build-test-guest.sh) for VM tests: built from Debian packages at test
/// time, once per checkout.
enum TestGuest {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    static let directory = root + "/.build-guest"

    static func build() throws -> (kernel: String, initrd: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [root + "/scripts/build-test-guest.sh", directory]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw VMError("scripts/build-test-guest.sh exited \(p.terminationStatus)") }
        return (directory + "/vmlinuz", directory + "/initrd.img")
    }
}

/// A real guest under qemu (TCG here), fed a tap Quiver opened, on a switch in a namespace the
/// test owns; then stopped, leaving no process and no tap.
@Suite(.serialized) struct GuestBootTrafficTests {
    @Test func guestBootsPingsAndStopsLeavingNothing() throws {
        let guest = try TestGuest.build()
        let f = try ScratchFabric(endpoints: 1, prefix: "qv")
        defer { f.tearDown() }
        let e1 = f.endpoints[0]
        let tapName = try InterfaceName(validating: "vt0")
        let tap = try Tap.create(tapName, TapOptions(queues: 1), in: f.fabric)
        try f.handle.setLink(tapName, LinkSettings(up: true, masterIndex: try f.handle.link(named: "br0").index))
        let name = "qv" + String(UUID().uuidString.prefix(6)).lowercased()
        let parent = "\(VMLauncher.runRoot)/\(name)"
        let dir = "\(parent)/g"
        defer { _ = try? VMLauncher.stop(directory: dir); try? FileManager.default.removeItem(atPath: parent) }
        // A raw disk, handed over as descriptors in an fd set like the kernel and initrd.
        let disk = NSTemporaryDirectory() + "quiver-disk-\(UUID().uuidString).raw"
        try Data(count: 1 << 20).write(to: URL(fileURLWithPath: disk))
        defer { unlink(disk) }
        let spec = VMSpec(name: name, kernel: guest.kernel, initrd: guest.initrd, cmdline: "ipv6.disable=1", disk: disk, accel: .auto,
                          nics: [VMNIC(tap: "vt0", mac: try MACAddress("02:00:00:00:55:32"), guestDevice: "eth0",
                                       address: try IPPrefix("10.55.0.50/24"))])
        let record = try VMLauncher.start(spec, taps: [tap], directory: dir)
        #expect(tap.queues.isEmpty, "the queues were handed to qemu and closed here")
        #expect(VMLauncher.isAlive(record))
        // What this machine can do is said once, in the record.
        if !VMLauncher.vhostAvailable {
            #expect(record.backend == .userspace)
            #expect(record.notices.contains { $0.contains("/dev/vhost-net is absent") })
        }
        var mode: mode_t = 0
        var st = stat()
        if stat(dir, &st) == 0 { mode = st.st_mode & 0o777 }
        #expect(mode == 0o700, "run directory mode \(String(mode, radix: 8))")

        // qemu holds exactly one tap descriptor and opened no network device itself.
        let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(record.pid)/fd").compactMap {
            try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(record.pid)/fd/\($0)")
        }
        #expect(fds.filter { $0 == "/dev/net/tun" }.count == 1, "\(fds)")
        // It holds the guest's files as Quiver opened them (the disk twice: read-write and
        // read-only, plus what qemu reopened from its fd set; the kernel and initrd as sealed
        // copies in memory its own uid may reopen); no path of theirs is in its argv.
        let kernelName = (guest.kernel as NSString).lastPathComponent, initrdName = (guest.initrd as NSString).lastPathComponent
        #expect(fds.contains { $0.hasPrefix("/memfd:quiver-\(kernelName)") } && fds.contains { $0.hasPrefix("/memfd:quiver-\(initrdName)") }
                && fds.filter { $0 == disk }.count >= 2, "\(fds)")
        let argv = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(record.pid)/cmdline"))) ?? Data(), as: UTF8.self)
        #expect(!argv.contains(guest.kernel) && !argv.contains(disk), "\(argv)")

        let agent = try GuestAgent.waitReady(socketPath: dir + "/agent.sock", timeout: 120)
        let ping = try agent.run("ping -c 2 -W 2 \(e1.ip)")
        #expect(ping.status == 0, "\(ping.output)")
        #expect(try Reach.icmpEcho(from: e1.ns, to: try IPAddress("10.55.0.50")).answered)
        #expect(VMLauncher.status(directory: dir)?.state == "running")
        let console = try String(contentsOfFile: dir + "/console.log", encoding: .utf8)
        #expect(console.contains("quiver-guest: ready \(name)"))

        #expect(try VMLauncher.stop(directory: dir))
        #expect(!VMLauncher.isAlive(record))
        #expect(VMLauncher.status(directory: dir)?.state == "stopped")
        // The tap lived as long as qemu held it.
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline, (try? f.handle.linkIfPresent(named: tapName)) != nil { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try f.handle.linkIfPresent(named: tapName) == nil, "tap left behind")
    }
}
