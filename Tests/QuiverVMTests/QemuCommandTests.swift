import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverVM
import Testing

/// The qemu command line and the descriptors a guest gets — no qemu needed.
@Suite struct QemuCommandTests {
    static func spec(queues: Int) -> VMSpec {
        VMSpec(name: "g1", kernel: "/k/vmlinuz", initrd: "/k/initrd.img", cmdline: "quiet", memoryMiB: 256, cpus: 2, accel: .tcg,
               nics: [VMNIC(tap: "lab-g1-net0", mac: try! MACAddress("02:00:00:00:00:31"), queues: queues, guestDevice: "eth0",
                            address: try! IPPrefix("10.10.0.31/24"), gateway: try! IPAddress("10.10.0.1"))])
    }
    let files = QemuCommand.Files(directory: "/run/quiver/vms/lab/g1")

    func value(_ argv: [String], after flag: String, nth: Int = 0) -> String? {
        let idx = argv.indices.filter { argv[$0] == flag }
        return nth < idx.count ? argv[idx[nth] + 1] : nil
    }

    @Test func oneQueueUserspace() {
        let a = QemuCommand.argv(Self.spec(queues: 1), files: files, fileFDs: .init(kernel: 90, initrd: 91), tapFDs: [[3]], vhostFDs: nil, accel: .tcg)
        #expect(a.first == "qemu-system-x86_64")
        #expect(value(a, after: "-netdev") == "tap,id=net0,fd=3,vhost=off")
        #expect(value(a, after: "-device") == "virtio-net-pci,netdev=net0,mac=02:00:00:00:00:31")
        #expect(value(a, after: "-accel") == "tcg")
        #expect(value(a, after: "-cpu") == "max")
        #expect(value(a, after: "-append") == "console=ttyS0 panic=-1 quiver.name=g1 quiver.net=eth0,10.10.0.31/24,10.10.0.1 quiet")
        #expect(value(a, after: "-chardev", nth: 2) == "socket,id=qmp,path=/run/quiver/vms/lab/g1/qmp.sock,server=on,wait=off")
        #expect(value(a, after: "-mon") == "chardev=qmp,mode=control")
        #expect(value(a, after: "-pidfile") == "/run/quiver/vms/lab/g1/qemu.pid")
        #expect(a.contains("-daemonize"))
        // qemu never opens a network device itself.
        #expect(!a.contains { $0.contains("ifname=") || $0.contains("/dev/net/tun") || $0.contains("script=") })
    }

    @Test func fourQueuesWithVhost() {
        let a = QemuCommand.argv(Self.spec(queues: 4), files: files, fileFDs: .init(kernel: 90, initrd: 91), tapFDs: [[100, 101, 102, 103]],
                                 vhostFDs: [[104, 105, 106, 107]], accel: .kvm)
        #expect(value(a, after: "-netdev") == "tap,id=net0,fds=100:101:102:103,vhost=on,vhostfds=104:105:106:107")
        #expect(value(a, after: "-device") == "virtio-net-pci,netdev=net0,mac=02:00:00:00:00:31,mq=on,vectors=10")
        #expect(value(a, after: "-cpu") == "host")
    }

    @Test func oneQueueWithVhostAndFourWithout() {
        let one = QemuCommand.argv(Self.spec(queues: 1), files: files, fileFDs: .init(kernel: 90, initrd: 91), tapFDs: [[100]], vhostFDs: [[101]], accel: .tcg)
        #expect(value(one, after: "-netdev") == "tap,id=net0,fd=100,vhost=on,vhostfd=101")
        let four = QemuCommand.argv(Self.spec(queues: 4), files: files, fileFDs: .init(kernel: 90, initrd: 91), tapFDs: [[100, 101, 102, 103]], vhostFDs: nil, accel: .tcg)
        #expect(value(four, after: "-netdev") == "tap,id=net0,fds=100:101:102:103,vhost=off")
    }

    @Test func autoAcceleratorIsResolvedWithAReason() {
        let (accel, notice) = VMLauncher.resolve(.auto)
        #expect(accel != .auto)
        if accel == .tcg { #expect(notice?.contains("TCG") == true) }
        #expect(VMLauncher.resolve(.tcg) == (.tcg, nil))
    }

    /// The child sees exactly 0, 1, 2 and the descriptors handed to it, as 3 and 4 — none of the
    /// others this test process holds (the test runtime keeps some without close-on-exec).
    @Test func onlyHandedDescriptorsReachTheChild() throws {
        let a = try FileDescriptorPair()
        let out = NSTemporaryDirectory() + "quiver-fds-\(UUID().uuidString)"
        defer { unlink(out) }
        let leaky = open("/dev/null", O_RDONLY) // not close-on-exec: must not reach the child either
        defer { close(leaky) }
        // `exec >` replaces stdout without saving it; the glob opens one directory descriptor of
        // its own while it reads, which shows up in the listing too.
        let r = try Spawn.run(["/bin/sh", "-c", "exec >\(out); for f in /proc/$$/fd/*; do echo ${f##*/}; done; readlink /proc/$$/fd/3"],
                              descriptors: [a.first, a.second])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = (try String(contentsOfFile: out, encoding: .utf8)).split(separator: "\n")
        let fds = Set(lines.compactMap { Int($0) })
        #expect(fds.isSuperset(of: [0, 1, 2, 3, 4]) && fds.subtracting([0, 1, 2, 3, 4]).count == 1, "child has \(fds.sorted())")
        #expect(lines.last == "/dev/null")
    }

    @Test func vhostRuntimeNeedsTheDevice() throws {
        guard VMLauncher.vhostAvailable else {
            print("skipped: \(VMLauncher.vhostDevice) is absent on this kernel (no vhost-net); the argv/fd plumbing is tested above")
            return
        }
        let fd = open(VMLauncher.vhostDevice, O_RDWR | O_CLOEXEC)
        #expect(fd >= 0)
        close(fd)
    }
}

/// Two close-on-exec descriptors on /dev/null.
final class FileDescriptorPair {
    let first: Int32, second: Int32
    init() throws {
        first = open("/dev/null", O_RDONLY | O_CLOEXEC)
        second = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard first >= 0, second >= 0 else { throw VMError("open /dev/null") }
    }
    deinit { close(first); close(second) }
}
