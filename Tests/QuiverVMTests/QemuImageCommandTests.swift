import Foundation
import QuiverKernel
import QuiverVM
import Testing

/// The qemu command line of a guest that boots an image: firmware, the overlay over its base,
/// the seed, qemu-guest-agent's channel — all by descriptor, none by a path from the file.
@Suite struct QemuImageCommandTests {
    static let base = "/images/a,b=c\ndrive=evil.qcow2"

    static func spec(firmware: Firmware? = nil, agent: AgentKind = .qga) -> VMSpec {
        var s = VMSpec(name: "lab-deb", kernel: nil, memoryMiB: 1024, cpus: 2, accel: .tcg,
                       nics: [VMNIC(tap: "lab-deb-eth0", mac: try! MACAddress("02:00:00:00:00:41"), guestDevice: "eth0")])
        s.image = ImageSpec(path: base, size: 8 << 30)
        s.seed = SeedSpec(hostname: "deb")
        s.firmware = firmware
        s.agent = agent
        return s
    }

    func values(_ a: [String], after flag: String) -> [String] { a.indices.filter { a[$0] == flag }.map { a[$0 + 1] } }

    func blockdevs(_ a: [String]) throws -> [[String: Any]] {
        try values(a, after: "-blockdev").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    @Test func overlayOverItsBaseWithTheSeedAndTheAgent() throws {
        let fds = QemuCommand.FileDescriptors(kernel: nil, base: .init(fd: 10, format: "raw"), overlay: [11, 12], seed: 13)
        let a = QemuCommand.argv(Self.spec(), files: .init(directory: "/run/quiver/vms/lab/deb"), fileFDs: fds, tapFDs: [[14]], vhostFDs: nil,
                                 accel: .tcg, confined: .init(qmp: 15, agent: 16, console: 17, guestAgent: 18))
        // No kernel: SeaBIOS boots the overlay (bootindex 1), and no NIC ROM is tried first.
        #expect(!a.contains("-kernel") && !a.contains("-append") && !a.contains("-drive"))
        #expect(values(a, after: "-add-fd").contains("fd=10,set=3"))
        #expect(values(a, after: "-add-fd").filter { $0.hasSuffix("set=4") } == ["fd=11,set=4", "fd=12,set=4"])
        #expect(values(a, after: "-add-fd").contains("fd=13,set=5"))
        let b = try blockdevs(a)
        #expect(b.count == 6)
        #expect(b[0]["filename"] as? String == "/dev/fdset/3" && b[0]["read-only"] as? Bool == true)
        #expect(b[1]["driver"] as? String == "raw" && b[1]["node-name"] as? String == "base" && b[1]["read-only"] as? Bool == true)
        #expect(b[2]["filename"] as? String == "/dev/fdset/4" && b[2]["read-only"] == nil)
        // The overlay's backing is the node Quiver made from its descriptor, never the header's name.
        #expect(b[3]["driver"] as? String == "qcow2" && b[3]["backing"] as? String == "base")
        #expect(b[4]["filename"] as? String == "/dev/fdset/5" && b[5]["read-only"] as? Bool == true)
        #expect(values(a, after: "-device").contains("virtio-blk-pci,drive=disk,bootindex=1"))
        #expect(values(a, after: "-device").contains("virtio-blk-pci,drive=seed"))
        #expect(values(a, after: "-device").contains("virtio-net-pci,netdev=net0,mac=02:00:00:00:00:41,romfile="))
        // qemu-guest-agent: a virtio-serial port named as the agent expects, on Quiver's socket.
        #expect(values(a, after: "-chardev").contains("socket,id=qga,fd=18,server=on,wait=off"))
        #expect(values(a, after: "-device").contains("virtserialport,bus=qga-serial.0,chardev=qga,name=org.qemu.guest_agent.0"))
        // The base's name — commas, `=`, a newline and all — is nowhere on the command line.
        #expect(!a.contains { $0.contains("images") || $0.contains("evil") })
        #expect(a.last == QemuCommand.sandbox)
    }

    @Test func uefiPutsOVMFAndTheGuestsVariablesOnPflash() {
        let fds = QemuCommand.FileDescriptors(kernel: nil, base: .init(fd: 10, format: "qcow2"), overlay: [11, 12], ovmfCode: 20, efiVars: [21, 22])
        let a = QemuCommand.argv(Self.spec(firmware: .uefi), files: .init(directory: "/run/quiver/vms/lab/deb"), fileFDs: fds, tapFDs: [[14]],
                                 vhostFDs: nil, accel: .tcg, confined: .init(qmp: 15, agent: 16, console: 17, guestAgent: 18))
        #expect(values(a, after: "-drive") == ["if=pflash,unit=0,format=raw,readonly=on,file=/dev/fdset/6",
                                               "if=pflash,unit=1,format=raw,file=/dev/fdset/7"])
        #expect(values(a, after: "-add-fd").filter { $0.hasSuffix("set=6") || $0.hasSuffix("set=7") } == ["fd=20,set=6", "fd=21,set=7", "fd=22,set=7"])
    }

    @Test func noAgentChannelWithoutQGA() {
        let fds = QemuCommand.FileDescriptors(kernel: nil, base: .init(fd: 10, format: "raw"), overlay: [11, 12])
        for agent in [AgentKind.none, .quiver] {
            let a = QemuCommand.argv(Self.spec(agent: agent), files: .init(directory: "/run/quiver/vms/lab/deb"), fileFDs: fds, tapFDs: [[14]],
                                     vhostFDs: nil, accel: .tcg, confined: .init(qmp: 15, agent: 16, console: 17, guestAgent: nil))
            #expect(!a.contains { $0.contains("guest_agent") || $0.contains("id=qga") })
        }
    }

    /// Direct kernel boot and an image together: the kernel by descriptor, root on the overlay.
    @Test func kernelAndImageTogether() {
        var s = Self.spec()
        s.kernel = "/k/vmlinuz"
        s.cmdline = "root=/dev/vda1"
        let fds = QemuCommand.FileDescriptors(kernel: 9, base: .init(fd: 10, format: "raw"), overlay: [11, 12])
        let a = QemuCommand.argv(s, files: .init(directory: "/run/quiver/vms/lab/deb"), fileFDs: fds, tapFDs: [[14]], vhostFDs: nil, accel: .tcg,
                                 confined: .init(qmp: 15, agent: 16, console: 17, guestAgent: 18))
        #expect(values(a, after: "-kernel") == ["/proc/self/fd/9"])
        #expect(values(a, after: "-append").first?.hasSuffix("root=/dev/vda1") == true)
        #expect(values(a, after: "-device").contains("virtio-blk-pci,drive=disk,bootindex=1"))
    }
}
