import Foundation

/// The qemu command line for a spec — pure, so it is unit-tested without starting anything.
///
/// NIC queues arrive as descriptor numbers already open in the child (`fds=`/`vhostfds=`, as
/// libvirt passes them): qemu never opens a network device and needs no privilege for it. The
/// guest's files arrive the same way: the kernel and initrd as `/proc/self/fd/N` (qemu reads them
/// with a plain open, which reopens that very file), the disk through an fd set
/// (`-add-fd` + `file=/dev/fdset/N`). No path from a topology file reaches qemu, and every value
/// that does go into one of qemu's `key=value,…` option strings is escaped by qemu's own rule
/// (``QemuOptions``).
public enum QemuCommand {
    public struct Files: Sendable, Equatable {
        public var qmp: String
        public var agent: String
        public var console: String
        public var pidfile: String
        public var guestAgent: String

        public init(directory: String) {
            guestAgent = GuestDirectory.file(.guestAgent, in: directory)
            qmp = GuestDirectory.file(.qmp, in: directory)
            agent = GuestDirectory.file(.agent, in: directory)
            console = GuestDirectory.file(.console, in: directory)
            pidfile = GuestDirectory.file(.pidfile, in: directory)
        }
    }

    /// Descriptor numbers in the child of the guest's files. The disk is opened twice, read-write
    /// and read-only: qemu picks from its fd set the descriptor whose access mode matches each
    /// open it makes (it probes the image read-only first), as libvirt passes them.
    public struct FileDescriptors: Sendable, Equatable {
        public var kernel: Int32?
        public var initrd: Int32?
        public var disk: [Int32]
        /// The base image (read-only) and its format.
        public var base: Base?
        /// The overlay over it, read-write and read-only.
        public var overlay: [Int32]
        /// The NoCloud seed (read-only).
        public var seed: Int32?
        /// OVMF's code (read-only) and the guest's variable store (read-write and read-only).
        public var ovmfCode: Int32?
        public var efiVars: [Int32]

        public init(kernel: Int32?, initrd: Int32? = nil, disk: [Int32] = [], base: Base? = nil, overlay: [Int32] = [],
                    seed: Int32? = nil, ovmfCode: Int32? = nil, efiVars: [Int32] = []) {
            self.kernel = kernel
            self.initrd = initrd
            self.disk = disk
            self.base = base
            self.overlay = overlay
            self.seed = seed
            self.ovmfCode = ovmfCode
            self.efiVars = efiVars
        }
    }

    /// A base image's descriptor and its format (from qemu-img).
    public struct Base: Sendable, Equatable {
        public var fd: Int32
        public var format: String
        public init(fd: Int32, format: String) {
            self.fd = fd
            self.format = format
        }
    }

    /// The fd set the disk's descriptor is added to.
    static let diskFDSet = 1
    /// The fd set of the console log (jailed qemu opens no path of the host).
    static let consoleFDSet = 2
    /// The fd sets of the base image, its overlay, the seed, OVMF's code and variables.
    static let baseFDSet = 3, overlayFDSet = 4, seedFDSet = 5, ovmfCodeFDSet = 6, efiVarsFDSet = 7

    /// A jailed qemu's run files, already open in the child: the QMP and agent sockets Quiver
    /// listens on, the console log. Its own seccomp filter is on.
    public struct Confined: Sendable, Equatable {
        public var qmp: Int32
        public var agent: Int32
        public var console: Int32
        /// qemu-guest-agent's socket (`agent: qga`).
        public var guestAgent: Int32?

        public init(qmp: Int32, agent: Int32, console: Int32, guestAgent: Int32? = nil) {
            self.qmp = qmp
            self.agent = agent
            self.console = console
            self.guestAgent = guestAgent
        }
    }

    /// qemu's own seccomp filter, as the zone asks: no obsolete calls, no privilege
    /// changes, no new processes, no resource-limit or scheduling changes.
    public static let sandbox = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

    /// - Parameters:
    ///   - fileFDs: the child's descriptor numbers of the kernel, initrd and disk.
    ///   - tapFDs: per NIC, the child's descriptor number of each queue.
    ///   - vhostFDs: per NIC, one vhost-net descriptor per queue; nil: userspace virtio-net.
    ///   - accel: the accelerator actually chosen (`auto` already resolved).
    public static func argv(_ spec: VMSpec, files: Files, fileFDs: FileDescriptors, tapFDs: [[Int32]], vhostFDs: [[Int32]]?,
                            accel: Accelerator, binary: String = "qemu-system-x86_64", confined: Confined? = nil) -> [String] {
        precondition(accel != .auto, "resolve auto before building the command line")
        var a = [binary, "-name", QemuOptions.string(implied: nil, [("guest", spec.name)]),
                 "-nodefaults", "-no-user-config", "-nographic", "-display", "none",
                 "-machine", "q35", "-accel", accel.rawValue, "-cpu", accel == .kvm ? "host" : "max",
                 "-m", String(spec.memoryMiB), "-smp", String(spec.cpus)]
        a += boot(spec, fileFDs) + disks(fileFDs)
        for (i, nic) in spec.nics.enumerated() {
            let fds = tapFDs[i].map(String.init).joined(separator: ":")
            var netdev: [(String, String)] = [("id", "net\(i)"), tapFDs[i].count == 1 ? ("fd", fds) : ("fds", fds)]
            if let v = vhostFDs?[i] {
                netdev += [("vhost", "on"), v.count == 1 ? ("vhostfd", String(v[0])) : ("vhostfds", v.map(String.init).joined(separator: ":"))]
            } else {
                netdev.append(("vhost", "off"))
            }
            var device: [(String, String)] = [("netdev", "net\(i)"), ("mac", nic.mac.description)]
            // Firmware would try each NIC's iPXE ROM before the disk: an image guest has none.
            if spec.image != nil { device.append(("romfile", "")) }
            if nic.queues > 1 { device += [("mq", "on"), ("vectors", String(2 * nic.queues + 2))] }
            a += ["-netdev", QemuOptions.string(implied: "tap", netdev), "-device", QemuOptions.string(implied: "virtio-net-pci", device)]
        }
        if let c = confined {
            a += ["-add-fd", QemuOptions.string(implied: nil, [("fd", String(c.console)), ("set", String(consoleFDSet))]),
                  "-chardev", QemuOptions.string(implied: "file", [("id", "console"), ("path", "/dev/fdset/\(consoleFDSet)")]), "-serial", "chardev:console",
                  "-chardev", QemuOptions.string(implied: "socket", [("id", "agent"), ("fd", String(c.agent)), ("server", "on"), ("wait", "off")]),
                  "-serial", "chardev:agent",
                  "-chardev", QemuOptions.string(implied: "socket", [("id", "qmp"), ("fd", String(c.qmp)), ("server", "on"), ("wait", "off")]),
                  "-mon", QemuOptions.string(implied: nil, [("chardev", "qmp"), ("mode", "control")])]
            if spec.agentKind == .qga, let g = c.guestAgent {
                a += guestAgent(QemuOptions.string(implied: "socket", [("id", "qga"), ("fd", String(g)), ("server", "on"), ("wait", "off")]))
            }
            a += ["-sandbox", sandbox]
            return a
        }
        a += ["-chardev", QemuOptions.string(implied: "file", [("id", "console"), ("path", files.console)]), "-serial", "chardev:console",
              "-chardev", QemuOptions.string(implied: "socket", [("id", "agent"), ("path", files.agent), ("server", "on"), ("wait", "off")]),
              "-serial", "chardev:agent",
              // QMP as a chardev and a monitor on it: `-qmp unix:PATH` would read PATH as an
              // implied value, where a `=` in it would start an option of its own.
              "-chardev", QemuOptions.string(implied: "socket", [("id", "qmp"), ("path", files.qmp), ("server", "on"), ("wait", "off")]),
              "-mon", QemuOptions.string(implied: nil, [("chardev", "qmp"), ("mode", "control")]),
              "-pidfile", files.pidfile, "-daemonize"]
        if spec.agentKind == .qga {
            a += guestAgent(QemuOptions.string(implied: "socket", [("id", "qga"), ("path", files.guestAgent), ("server", "on"), ("wait", "off")]))
        }
        return a
    }

    /// What boots: the kernel and initrd (direct boot, as `/proc/self/fd/N`: plain file names,
    /// not option strings), and the firmware — SeaBIOS by default, or OVMF's code and the
    /// guest's own variable store on pflash.
    static func boot(_ spec: VMSpec, _ f: FileDescriptors) -> [String] {
        var a: [String] = []
        if let k = f.kernel {
            a += ["-kernel", "/proc/self/fd/\(k)"]
            if let i = f.initrd { a += ["-initrd", "/proc/self/fd/\(i)"] }
            // One argument, never parsed for options: the guest kernel's words.
            a += ["-append", spec.fullCommandLine]
        }
        if let code = f.ovmfCode, !f.efiVars.isEmpty {
            a += addFD([code], set: ovmfCodeFDSet) + addFD(f.efiVars, set: efiVarsFDSet)
            a += ["-drive", QemuOptions.string(implied: nil, [("if", "pflash"), ("unit", "0"), ("format", "raw"), ("readonly", "on"), ("file", "/dev/fdset/\(ovmfCodeFDSet)")]),
                  "-drive", QemuOptions.string(implied: nil, [("if", "pflash"), ("unit", "1"), ("format", "raw"), ("file", "/dev/fdset/\(efiVarsFDSet)")])]
        }
        return a
    }

    /// The disks: a raw `disk`; the overlay over the base image, whose backing is given as a
    /// node (`backing=base`), so qemu never opens the name in the overlay's header; the seed.
    /// `-blockdev` takes JSON, written by a serializer.
    static func disks(_ f: FileDescriptors) -> [String] {
        var a: [String] = []
        if !f.disk.isEmpty {
            a += addFD(f.disk, set: diskFDSet)
            a += ["-drive", QemuOptions.string(implied: nil, [("file", "/dev/fdset/\(diskFDSet)"), ("if", "virtio"), ("format", "raw")])]
        }
        if let base = f.base, !f.overlay.isEmpty {
            a += addFD([base.fd], set: baseFDSet) + addFD(f.overlay, set: overlayFDSet)
            a += ["-blockdev", blockdev(["driver": "file", "filename": "/dev/fdset/\(baseFDSet)", "node-name": "base-file", "read-only": true]),
                  "-blockdev", blockdev(["driver": base.format, "file": "base-file", "node-name": "base", "read-only": true]),
                  "-blockdev", blockdev(["driver": "file", "filename": "/dev/fdset/\(overlayFDSet)", "node-name": "disk-file"]),
                  "-blockdev", blockdev(["driver": "qcow2", "file": "disk-file", "backing": "base", "node-name": "disk"]),
                  "-device", QemuOptions.string(implied: "virtio-blk-pci", [("drive", "disk"), ("bootindex", "1")])]
        }
        if let seed = f.seed {
            a += addFD([seed], set: seedFDSet)
            a += ["-blockdev", blockdev(["driver": "file", "filename": "/dev/fdset/\(seedFDSet)", "node-name": "seed-file", "read-only": true]),
                  "-blockdev", blockdev(["driver": "raw", "file": "seed-file", "node-name": "seed", "read-only": true]),
                  "-device", QemuOptions.string(implied: "virtio-blk-pci", [("drive", "seed")])]
        }
        return a
    }

    /// qemu-guest-agent's channel: a virtio-serial port named `org.qemu.guest_agent.0` on the
    /// chardev `chardev` (its option string).
    static func guestAgent(_ chardev: String) -> [String] {
        ["-device", QemuOptions.string(implied: "virtio-serial-pci", [("id", "qga-serial")]),
         "-chardev", chardev,
         "-device", QemuOptions.string(implied: "virtserialport", [("bus", "qga-serial.0"), ("chardev", "qga"), ("name", "org.qemu.guest_agent.0")])]
    }

    static func addFD(_ fds: [Int32], set: Int) -> [String] {
        fds.flatMap { ["-add-fd", QemuOptions.string(implied: nil, [("fd", String($0)), ("set", String(set))])] }
    }

    /// One `-blockdev` in JSON (keys sorted, so the command line is the same every time).
    static func blockdev(_ object: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
    }
}

/// qemu's `key=value,key=value` option strings (QemuOpts): a `,` inside a value is written `,,`;
/// an optional first element without a key is the option's implied value (`tap,...`,
/// `file,...`). Keys are Quiver's own words; values are escaped here, so no value can end its
/// option and start another. An implied value is never one from outside: qemu reads a `=` in it
/// as the end of a key.
public enum QemuOptions {
    /// `,` → `,,` (qemu's only escape in option values).
    public static func escape(_ value: String) -> String { value.replacingOccurrences(of: ",", with: ",,") }

    /// `implied,key=value,...` with every value escaped. `implied` is written as given (already
    /// escaped where it is a value).
    public static func string(implied: String?, _ pairs: [(String, String)]) -> String {
        let body = pairs.map { k, v in
            precondition(!k.isEmpty && !k.contains(",") && !k.contains("="), "option key \(k)")
            return "\(k)=\(escape(v))"
        }
        return ((implied.map { [$0] } ?? []) + body).joined(separator: ",")
    }
}
