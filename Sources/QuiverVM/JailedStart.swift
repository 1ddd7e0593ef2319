import CGuestJail
import Foundation
import Glibc
import QuiverKernel
import QuiverNetlink
import SystemPackage

/// Starting a guest in its jail (``GuestJail``): its own uid (``GuestIdentity``), its cgroup
/// (``GuestCgroup``), then qemu released into both and waited for until QMP answers.
extension VMLauncher {
    static func startJailed(_ spec: VMSpec, argv: [String], descriptors: [Int32], stderr log: FileDescriptor, accel: Accelerator,
                            backend: NetBackend, directory: String, dir: TrustedDirectory, notices: [String]) throws -> VMRecord {
        let id = try GuestIdentity.claim(spec.name, in: try GuestIdentity.range())
        var running = false
        // A start that fails gives back what it took: the id, the cgroups.
        defer { if !running { releaseConfinement(spec.name) } }
        let cgroup = try GuestCgroup.make(spec.name, memoryMiB: spec.memoryMiB, cpuCap: spec.cpuCap)
        _ = try dir.subdirectory(GuestDirectory.Entry.root.rawValue, create: true)
        let jail = GuestJail(root: GuestDirectory.file(.root, in: directory), hostname: spec.name,
                             uid: id, gid: id, kvm: accel == .kvm)
        let started = try jail.start(argv, descriptors: descriptors, stderr: log.rawValue)
        let pid = started.pid
        do {
            // The pid is on record before qemu runs: an apply killed from here on finds it.
            try dir.write(GuestDirectory.Entry.pidfile.rawValue, Data("\(pid)\n".utf8))
            try cgroup.add(pid)
        } catch {
            started.abandon()
            throw error
        }
        try started.release()
        try waitUntilReady(spec.name, pid: pid, directory: directory, dir: dir)
        let confinement = Confinement(uid: id, gid: id, cgroup: cgroup, namespaces: ["mnt", "pid", "ipc", "uts", "net"], seccomp: QemuCommand.sandbox)
        let record = VMRecord(name: spec.name, pid: pid, accel: accel, backend: backend, nics: spec.nics, directory: directory,
                              notices: notices, startedAt: Date(), spec: spec, confinement: confinement)
        try write(record, to: dir)
        running = true
        return record
    }

    /// A jailed guest's name becomes a cgroup's and a claim's: one path component of safe bytes.
    static func checkJailName(_ name: String) throws {
        guard (1...64).contains(name.utf8.count), name.first != "-",
              name.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 95 || $0 == 45 }) else {
            throw VMError("guest name \(InvalidValue.quoted(name)) may use only letters, digits, _ and - (1–64 bytes, not starting with -) to run in a jail")
        }
    }

    /// Until QMP answers (qemu is up), or qemu is gone (its log says why), or 30 s.
    static func waitUntilReady(_ name: String, pid: Int32, directory: String, dir: TrustedDirectory) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            guard isRunning(pid) else {
                let log = (try? dir.read(GuestDirectory.Entry.log.rawValue, limit: 1 << 16)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
                throw VMError("qemu for \(name) exited while starting: \(log.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            if (try? QMPClient(socketPath: GuestDirectory.file(.qmp, in: directory), timeout: 1)) != nil { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        kill(pid, SIGKILL)
        throw VMError("qemu for \(name) did not answer on QMP within 30 s; it was killed")
    }

    static func write(_ record: VMRecord, to dir: TrustedDirectory) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try dir.write(GuestDirectory.Entry.record.rawValue, try enc.encode(record))
    }

    /// The qemu binary's absolute path: it must be under /usr, the only part of the host's tree a
    /// jail holds.
    static func jailedBinary(_ binary: String) throws -> String {
        let candidates = binary.hasPrefix("/") ? [binary] : (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            .split(separator: ":").map { "\($0)/\(binary)" }
        guard let found = candidates.first(where: { access($0, X_OK) == 0 }) else { throw VMError("\(binary) is not installed (apt install qemu-system-x86)") }
        let real = URL(fileURLWithPath: found).resolvingSymlinksInPath().path
        guard real.hasPrefix("/usr/") else { throw VMError("\(real) is not under /usr, the only part of the host a guest's jail holds; install qemu from Debian's package") }
        return real
    }

    /// A sealed in-memory file holding `data` (read-only for good), which any uid may read
    /// through /proc/self/fd.
    static func sealedCopy(_ data: Data, name: String) throws -> FileDescriptor {
        let m = quiver_memfd("quiver-" + name)
        guard m >= 0 else { throw SystemCallError("memfd_create", name, errno: Errno(rawValue: errno)) }
        let copy = FileDescriptor(rawValue: m)
        do {
            try copy.writeAll(data)
            guard quiver_seal(m) == 0 else { throw SystemCallError("fcntl(F_ADD_SEALS)", name, errno: Errno(rawValue: errno)) }
            _ = lseek(m, 0, SEEK_SET)
        } catch {
            try? copy.close()
            throw error
        }
        return copy
    }

    /// A sealed in-memory copy of `f` (read-only for good), which any uid may read through
    /// /proc/self/fd.
    static func sealedCopy(_ f: FileDescriptor, name: String) throws -> FileDescriptor {
        let m = quiver_memfd("quiver-" + name)
        guard m >= 0 else { throw SystemCallError("memfd_create", name, errno: Errno(rawValue: errno)) }
        let copy = FileDescriptor(rawValue: m)
        do {
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            var offset = 0
            while true {
                let n = pread(f.rawValue, &buf, buf.count, offset)
                if n < 0 { if errno == EINTR { continue }; throw SystemCallError("read", name, errno: Errno(rawValue: errno)) }
                if n == 0 { break }
                var done = 0
                while done < n {
                    let w = buf.withUnsafeBytes { Glibc.write(m, $0.baseAddress! + done, n - done) }
                    if w < 0 { if errno == EINTR { continue }; throw SystemCallError("write", name, errno: Errno(rawValue: errno)) }
                    done += w
                }
                offset += n
            }
            guard quiver_seal(m) == 0 else {
                throw SystemCallError("fcntl(F_ADD_SEALS)", name, errno: Errno(rawValue: errno))
            }
        } catch {
            try? copy.close()
            throw error
        }
        return copy
    }
}
