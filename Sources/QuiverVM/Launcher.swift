import Foundation
import QuiverKernel
import QuiverNetlink
import SystemPackage

/// What Quiver records about a started guest (`record.json` in its run directory).
public struct VMRecord: Sendable, Codable, Equatable {
    public var name: String
    public var pid: Int32
    public var accel: Accelerator
    public var backend: NetBackend
    public var nics: [VMNIC]
    public var directory: String
    /// Said once when the guest started: why TCG, why userspace networking.
    public var notices: [String]
    public var startedAt: Date
    /// What it was started from: a later apply restarts the guest when this differs.
    public var spec: VMSpec?
    /// How it is confined; nil: not at all (records of guests started before jails, and
    /// `confine: false` starts, which only the benchmark uses).
    public var confinement: Confinement?
}

/// A jailed guest's identity, cgroup and confinement, as `quiver vm list` shows them.
public struct Confinement: Sendable, Codable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var cgroup: GuestCgroup
    /// The namespaces qemu has of its own.
    public var namespaces: [String]
    /// qemu's `-sandbox` (seccomp) setting.
    public var seccomp: String

    /// One line: `uid 1879048192, ns mnt+pid+ipc+uts+net, seccomp, mem 768M, cpu 50%`.
    public var summary: String {
        "uid \(uid), ns \(namespaces.joined(separator: "+")), seccomp, mem \(cgroup.memoryBytes >> 20)M"
            + (cgroup.cpuCap.map { ", cpu \($0)%" } ?? "") + ", pids \(cgroup.pidsMax)"
    }
}

/// A guest as `quiver vm list` shows it.
public struct VMStatus: Sendable, Codable, Equatable {
    public var record: VMRecord
    /// From QMP (`running`, `paused`, …), or `stopped` when the process is gone.
    public var state: String
}

/// Starts, inspects and stops qemu guests. Quiver opens every tap queue (and, where the kernel has
/// it, one `/dev/vhost-net` descriptor per queue) and passes them to qemu by number; qemu is
/// daemonized with a pidfile, a QMP socket, the serial console in a log file and the agent on a
/// second serial port, all in a 0700 run directory.
public enum VMLauncher {
    public static let vhostDevice = "/dev/vhost-net"
    /// Run directories: `/run/quiver/vms/TOPOLOGY/HOST`.
    public static let runRoot = GuestDirectory.root

    /// Where the KVM/TCG decision comes from: `/dev/kvm` must open and the CPU must offer
    /// hardware virtualization (vmx/svm). A KVM that only offers PVM (`kvm_pvm`, no vmx/svm, as
    /// on these machines) hangs stock guest kernels, so `auto` picks TCG there.
    public static func resolve(_ accel: Accelerator) -> (Accelerator, String?) {
        switch accel {
        case .tcg: return (.tcg, nil)
        case .kvm: return (.kvm, nil)
        case .auto:
            let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
            if fd < 0 { return (.tcg, "accel auto: /dev/kvm cannot be opened (\(Errno(rawValue: errno))); using TCG (software emulation)") }
            close(fd)
            let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
            let hardware = cpu.split(separator: "\n").contains { $0.hasPrefix("flags") && ($0.contains(" vmx") || $0.contains(" svm")) }
            if !hardware {
                let pvm = FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm")
                return (.tcg, "accel auto: /dev/kvm is \(pvm ? "KVM-PVM" : "present") but the CPU offers no vmx/svm, so stock guest kernels cannot use it; using TCG (software emulation)")
            }
            return (.kvm, nil)
        }
    }

    public static var vhostAvailable: Bool { FileManager.default.fileExists(atPath: vhostDevice) }

    /// A qemu started for `directory` that has no record (Quiver was killed between starting it
    /// and writing `record.json`): found by the pidfile path in its command line or, jailed, by
    /// `qemu.pid` naming a qemu with `guest`'s name (default: the directory's topology guest) in
    /// that guest's cgroup.
    public static func strayProcess(directory: String, guest: String? = nil) -> Int32? {
        guard let dir = try? TrustedDirectory.open(directory, create: false), let data = try? dir.read(GuestDirectory.Entry.pidfile.rawValue, limit: 64),
              let pid = Int32(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1, isRunning(pid) else { return nil }
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        if String(decoding: cmdline, as: UTF8.self).contains(GuestDirectory.file(.pidfile, in: directory)) { return pid }
        // A jailed qemu (its pid written by Quiver): this guest's qemu, in this guest's cgroup —
        // a pid reused by another guest's qemu is not taken for it.
        guard let name = guest ?? GuestDirectory.guestName(directory: directory) else { return nil }
        let argv = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        let cgroups = ((try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? "").split(separator: "\n")
        return argv.contains("-sandbox") && argv.contains("guest=\(QemuOptions.escape(name))")
            && cgroups.contains { $0.hasSuffix(":/quiver/\(name)") } ? pid : nil
    }

    /// Makes (0700) or checks the run directory of a guest — a ``GuestDirectory``: nothing in it
    /// but its own entries, none a link — and clears the files of an earlier start; a stray qemu
    /// of an interrupted start is killed first (it holds the taps).
    @discardableResult
    public static func prepare(directory: String, guest: String? = nil) throws -> TrustedDirectory {
        if let pid = strayProcess(directory: directory, guest: guest) {
            kill(pid, SIGKILL)
            let deadline = Date().addingTimeInterval(3)
            while isRunning(pid), Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        }
        let dir = try GuestDirectory.open(directory, create: true)!
        for f in GuestDirectory.Entry.allCases where f != .console && f != .root { try dir.remove(f.rawValue) }
        return dir
    }

    /// Starts `spec` with the queues of `taps` (one `Tap` per NIC, same order). The taps' fds are
    /// handed to qemu and closed here; a non-persistent tap then lives exactly as long as qemu.
    public static func start(_ spec: VMSpec, taps: [Tap], directory: String, binary: String = "qemu-system-x86_64") throws -> VMRecord {
        try start(spec, queues: taps.map { $0.takeQueues() }, directory: directory, binary: binary)
    }

    /// Starts `spec` with each NIC's queue descriptors (a tap's, or a macvtap's character device
    /// opened once per queue), same order as `spec.nics`. The descriptors are handed to qemu and
    /// closed here, whether or not qemu starts. The kernel, initrd and disk are opened here
    /// (``GuestFile``) and handed over the same way: qemu is given no path from the topology.
    public static func start(_ spec: VMSpec, queues nicQueues: [[FileDescriptor]], directory: String,
                             binary: String = "qemu-system-x86_64", confine: Bool = true) throws -> VMRecord {
        precondition(nicQueues.count == spec.nics.count)
        defer { for q in nicQueues { for fd in q { try? fd.close() } } }
        if confine { try checkJailName(spec.name) }
        var opened: [FileDescriptor] = []
        defer { for f in opened { try? f.close() } }
        func file(_ path: String, _ access: GuestFile.Access) throws -> FileDescriptor {
            let f = try GuestFile.open(path, access, owner: spec.filesOwner)
            opened.append(f)
            return f
        }
        // Jailed, qemu reopens the kernel and initrd through /proc/self/fd as its own uid, which
        // checks the file's mode: it gets sealed in-memory copies that it may read.
        func bootFile(_ path: String) throws -> FileDescriptor {
            let f = try file(path, .read)
            guard confine else { return f }
            let copy = try sealedCopy(f, name: (path as NSString).lastPathComponent)
            opened.append(copy)
            return copy
        }
        let kernel = try spec.kernel.map { try bootFile($0) }
        let initrd = try spec.initrd.map { try bootFile($0) }
        let disk = try spec.disk.map { [try file($0, .readWrite), try file($0, .read)] } ?? []
        let dir = try prepare(directory: directory, guest: spec.name)
        let disks = try prepareDisks(spec, stateDirectory: stateDirectory(for: directory))
        defer { disks.close() }
        var notices: [String] = disks.notices
        let (accel, accelNotice) = resolve(spec.accel)
        if let n = accelNotice { notices.append(n) }

        // Descriptors: the guest's files, taps, then vhost-net; the child sees them as 3, 4, 5, …
        var mapping: [Int32] = []
        var next: Int32 = 3
        func hand(_ fd: FileDescriptor) -> Int32 {
            mapping.append(fd.rawValue)
            defer { next += 1 }
            return next
        }
        let fileFDs = QemuCommand.FileDescriptors(kernel: kernel.map(hand), initrd: initrd.map(hand), disk: disk.map(hand),
                                                  base: disks.base.map { QemuCommand.Base(fd: hand($0.0), format: $0.1.format) },
                                                  overlay: disks.overlay.map(hand), seed: disks.seed.map(hand),
                                                  ovmfCode: disks.ovmfCode.map(hand), efiVars: disks.efiVars.map(hand))
        var tapNumbers: [[Int32]] = []
        for q in nicQueues { tapNumbers.append(q.map(hand)) }
        var vhost: [FileDescriptor] = []
        defer { for v in vhost { try? v.close() } }
        var vhostNumbers: [[Int32]]?
        if vhostAvailable {
            var numbers: [[Int32]] = []
            for q in nicQueues {
                var perNIC: [Int32] = []
                for _ in q {
                    let v = try FileDescriptor.open(vhostDevice, .readWrite, options: [.closeOnExec])
                    vhost.append(v)
                    perNIC.append(hand(v))
                }
                numbers.append(perNIC)
            }
            vhostNumbers = numbers
        } else {
            notices.append("\(vhostDevice) is absent: guest NICs use qemu's userspace virtio-net over the same tap descriptors (slower than vhost-net)")
        }
        let files = QemuCommand.Files(directory: directory)
        let backend: NetBackend = vhostNumbers == nil ? .userspace : .vhost
        if confine {
            var runFiles: [FileDescriptor] = []
            defer { for f in runFiles { try? f.close() } }
            func run(_ f: FileDescriptor) -> Int32 { runFiles.append(f); return hand(f) }
            let confined = QemuCommand.Confined(qmp: run(try UnixSocket.listen(GuestDirectory.Entry.qmp.rawValue, in: dir)),
                                                agent: run(try UnixSocket.listen(GuestDirectory.Entry.agent.rawValue, in: dir)),
                                                console: run(try dir.create(GuestDirectory.Entry.console.rawValue)),
                                                guestAgent: spec.agentKind == .qga ? run(try UnixSocket.listen(GuestDirectory.Entry.guestAgent.rawValue, in: dir)) : nil)
            let log = try dir.create(GuestDirectory.Entry.log.rawValue)
            runFiles.append(log)
            let argv = QemuCommand.argv(spec, files: files, fileFDs: fileFDs, tapFDs: tapNumbers, vhostFDs: vhostNumbers, accel: accel,
                                        binary: try jailedBinary(binary), confined: confined)
            return try startJailed(spec, argv: argv, descriptors: mapping, stderr: log, accel: accel, backend: backend,
                                   directory: directory, dir: dir, notices: notices)
        }
        let argv = QemuCommand.argv(spec, files: files, fileFDs: fileFDs, tapFDs: tapNumbers, vhostFDs: vhostNumbers, accel: accel, binary: binary)
        let (status, stderr) = try Spawn.run(argv, descriptors: mapping)
        guard status == 0 else {
            throw VMError("qemu for \(spec.name) exited with status \(status): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard let pidData = try dir.read(GuestDirectory.Entry.pidfile.rawValue, limit: 64),
              let pid = Int32(String(decoding: pidData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else {
            throw VMError("qemu for \(spec.name) started but wrote no pidfile \(files.pidfile)")
        }
        let record = VMRecord(name: spec.name, pid: pid, accel: accel, backend: backend,
                              nics: spec.nics, directory: directory, notices: notices, startedAt: Date(), spec: spec)
        try write(record, to: dir)
        return record
    }

    /// The guest recorded in `directory`, if any, with its state.
    public static func status(directory: String) -> VMStatus? {
        guard let record = Self.record(directory: directory) else { return nil }
        guard isAlive(record) else { return VMStatus(record: record, state: "stopped") }
        let state = (try? QMPClient(socketPath: GuestDirectory.file(.qmp, in: directory), timeout: 2).status()) ?? "unknown"
        return VMStatus(record: record, state: state)
    }

    /// The record in `directory`, if any (read only; nothing asked of qemu).
    public static func record(directory: String) -> VMRecord? {
        guard let dir = try? TrustedDirectory.open(directory, create: false), let data = try? dir.read(GuestDirectory.Entry.record.rawValue) else { return nil }
        return try? JSONDecoder().decode(VMRecord.self, from: data)
    }

    /// True when the recorded pid is a live qemu (not a reused pid, not a zombie waiting for
    /// its parent to reap it).
    public static func isAlive(_ r: VMRecord) -> Bool {
        guard isRunning(r.pid) else { return false }
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(r.pid)/cmdline"))) ?? Data()
        // `-name guest=NAME` exactly: `guest=t/g1` must not match `guest=t/g10`.
        return cmdline.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "guest=\(QemuOptions.escape(r.name))" }
    }

    /// The process exists and has not exited (state in /proc/PID/stat is not Z or X).
    public static func isRunning(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)...].first
        return state != "Z" && state != "X"
    }

    /// Stops the guest in `directory`: qemu-guest-agent's `guest-shutdown` when it answers, else
    /// QMP `system_powerdown`, then `quit`, then SIGKILL, each after a bounded wait. Returns
    /// false when nothing was running.
    @discardableResult
    public static func stop(directory: String, powerdownTimeout: Double = 3, guestShutdownTimeout: Double = 60) throws -> Bool {
        let record = Self.record(directory: directory)
        defer { if let r = record, r.confinement != nil { releaseConfinement(r.name) } }
        let pid: Int32
        if let r = record, isAlive(r) {
            pid = r.pid
        } else if let stray = strayProcess(directory: directory, guest: record?.name) {
            pid = stray
        } else {
            return false
        }
        // On purpose: the daemon's supervisor leaves a guest stopped this way stopped.
        try? TrustedDirectory.open(directory, create: false)?.write(GuestDirectory.Entry.stopRequest.rawValue, Data("\(Date().timeIntervalSince1970)\n".utf8))
        func gone(within seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if !isRunning(pid) { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return !isRunning(pid)
        }
        // A guest with qemu-guest-agent shuts itself down when asked (file systems synced and
        // unmounted); one whose agent does not answer gets ACPI, then quit, then SIGKILL.
        if record?.spec?.agentKind == .qga, let agent = try? QGAClient(socketPath: GuestDirectory.file(.guestAgent, in: directory), timeout: 2) {
            if (try? agent.shutdown()) != nil, gone(within: guestShutdownTimeout) { return true }
        }
        if let q = try? QMPClient(socketPath: GuestDirectory.file(.qmp, in: directory), timeout: 2) {
            // The test guest has no ACPI daemon; powerdown is polite, quit is certain.
            _ = try? q.execute("system_powerdown")
            if gone(within: powerdownTimeout) { return true }
            _ = try? q.execute("quit")
            if gone(within: 3) { return true }
        }
        kill(pid, SIGKILL)
        _ = gone(within: 3)
        return true
    }
}

extension VMLauncher {
    /// Once a jailed guest is gone: its cgroups removed, its uid given back.
    static func releaseConfinement(_ name: String) {
        try? GuestCgroup.remove(name)
        try? GuestIdentity.release(name)
    }
}

public struct VMError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
