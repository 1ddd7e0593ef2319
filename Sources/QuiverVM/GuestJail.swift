import CGuestJail
import Foundation
import QuiverNetlink
import SystemPackage

/// How one guest's qemu is confined, as SmartOS ran qemu in a zone: new mount, PID, IPC, UTS and
/// network namespaces (the network one holds nothing but `lo`), its root a tmpfs holding only
/// `/usr` (read-only: qemu, its libraries and firmware), `/proc` of its own PID namespace and a
/// `/dev` of `null`, `zero`, `urandom` (and `kvm` when KVM is used); nothing in it is writable. It
/// runs as its own uid and gid with every capability gone (the bounding set too) and
/// `no_new_privs`. Taps, vhost-net, the guest's files, its sockets and console arrive as
/// descriptors; nothing else of the host is reachable by path.
public struct GuestJail: Sendable {
    /// The empty directory the jail's root is mounted on (in the jail's own mount namespace only).
    public var root: String
    /// Bound at the same path inside, read-only.
    public var readonly: [String]
    public var devices: [String]
    /// Symbolic links at the jail's top, name → target (merged /usr: `lib` → `usr/lib`).
    public var links: [(String, String)]
    public var hostname: String
    public var uid: UInt32
    public var gid: UInt32

    /// The jail of a guest: its root mounted on `root`, run as `uid`:`gid`.
    public init(root: String, hostname: String, uid: UInt32, gid: UInt32, kvm: Bool) {
        self.root = root
        readonly = ["/usr"]
        devices = ["null", "zero", "urandom"] + (kvm ? ["kvm"] : [])
        // The top-level links of a merged-/usr system, made only where the host has them.
        links = ["bin", "lib", "lib64", "sbin"].compactMap { name in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/" + name)).flatMap { $0.hasPrefix("usr/") ? (name, $0) : nil }
        }
        self.hostname = hostname
        self.uid = uid
        self.gid = gid
    }

    /// A started jail waiting to be released (see ``release()``): the caller puts it into its
    /// cgroups first, so nothing of qemu runs outside them.
    public struct Started: ~Copyable {
        public let pid: Int32
        let releaseFD: Int32
        let errorFD: Int32

        /// Lets qemu start; throws with the step that failed when the jail could not be made.
        public consuming func release() throws {
            var step: UnsafePointer<CChar>?
            if quiver_jail_release(releaseFD, errorFD, &step) != 0 {
                throw VMError("the jail of pid \(pid) could not \(step.map { String(cString: $0) } ?? "start"): \(Errno(rawValue: errno))")
            }
        }

        /// Kills it before it ran anything (it is still waiting to be released).
        public consuming func abandon() {
            close(releaseFD)
            close(errorFD)
            kill(pid, SIGKILL)
        }
    }

    /// Starts `argv` in the jail with `descriptors` at 3, 4, 5, … and `stderr` as its standard
    /// error; it waits to be released.
    public func start(_ argv: [String], descriptors: [Int32], stderr: Int32) throws -> Started {
        let strings = [root, hostname, argv[0]] + readonly + devices + links.map(\.0) + links.map(\.1) + argv
        var storage = strings.map { strdup($0)! }
        defer { for s in storage { free(s) } }
        var i = 0
        func take(_ n: Int) -> [UnsafePointer<CChar>?] {
            defer { i += n }
            return storage[i..<(i + n)].map { UnsafePointer($0) }
        }
        let fixed = take(3)
        let r = take(readonly.count), d = take(devices.count)
        let ln = take(links.count), lt = take(links.count)
        var args: [UnsafeMutablePointer<CChar>?] = storage[i...].map { $0 } + [nil]
        var env: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin"), nil]
        defer { free(env[0]); storage.removeAll() }
        var release: Int32 = -1, report: Int32 = -1
        let pid: pid_t = r.withUnsafeBufferPointer { rp in d.withUnsafeBufferPointer { dp in
            ln.withUnsafeBufferPointer { lnp in lt.withUnsafeBufferPointer { ltp in descriptors.withUnsafeBufferPointer { fp in
                args.withUnsafeMutableBufferPointer { ap in env.withUnsafeMutableBufferPointer { ep in
                    var j = quiver_jail(root: fixed[0], readonly: rp.baseAddress, readonly_count: Int32(readonly.count),
                                        devices: dp.baseAddress, device_count: Int32(devices.count),
                                        link_names: lnp.baseAddress, link_targets: ltp.baseAddress, link_count: Int32(links.count),
                                        hostname: fixed[1], uid: uid, gid: gid, fds: fp.baseAddress, fd_count: Int32(descriptors.count),
                                        stderr_fd: stderr, binary: fixed[2], argv: ap.baseAddress, envp: ep.baseAddress)
                    return quiver_jail_start(&j, &release, &report)
                } }
            } } }
        } }
        guard pid > 0 else { throw SystemCallError("fork into a jail", argv[0], errno: Errno(rawValue: errno)) }
        return Started(pid: pid, releaseFD: release, errorFD: report)
    }
}
