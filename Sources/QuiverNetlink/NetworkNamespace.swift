import CMnl
import CNetlink
import Foundation
import SystemPackage

/// A network namespace, named (`/var/run/netns/NAME`, as `ip netns` keeps them), by path, or a
/// process's.
///
/// Code never calls `setns` on a thread it does not own: ``run(_:)`` starts a fresh OS thread,
/// moves only that thread into the namespace and ends it afterwards, so async code and thread
/// pools are never left in the wrong namespace. Sockets opened there stay bound to the namespace
/// and can then be used from any thread.
public struct NetworkNamespace: Sendable, Hashable, CustomStringConvertible {
    public static let runDirectory = "/var/run/netns"

    /// The file that pins the namespace (a bind mount, or a `/proc` link).
    public let path: String
    /// The `ip netns` name, for named namespaces.
    public let name: String?

    public init(path: String, name: String? = nil) {
        self.path = path
        self.name = name
    }

    public static func named(_ name: String) -> NetworkNamespace {
        NetworkNamespace(path: "\(runDirectory)/\(name)", name: name)
    }

    public static func process(_ pid: pid_t) -> NetworkNamespace {
        NetworkNamespace(path: "/proc/\(pid)/ns/net")
    }

    /// The namespace of this process's main thread.
    public static var host: NetworkNamespace { NetworkNamespace(path: "/proc/\(getpid())/ns/net") }

    public var description: String { name.map { "netns \($0)" } ?? path }

    /// Opens the namespace file (`O_RDONLY|O_CLOEXEC`); the caller owns the descriptor.
    public func open() throws(SystemCallError) -> FileDescriptor {
        do {
            return try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        } catch {
            throw SystemCallError("open", "\(self)", errno: error as? Errno ?? .noSuchFileOrDirectory)
        }
    }

    public var exists: Bool { access(path, F_OK) == 0 }

    /// Runs `body` on a fresh OS thread that has entered this namespace; the thread ends after.
    public func run<T>(_ body: () throws -> T) throws -> T {
        let fd = try open()
        defer { try? fd.close() }
        var outcome: Result<T, Error>!
        try NetworkNamespace.onFreshThread {
            let rc = quiver_setns(fd.rawValue, quiver_clone_newnet())
            if rc < 0 {
                outcome = .failure(SystemCallError("setns", "\(self)", errno: Errno(rawValue: -rc)))
                return
            }
            outcome = Result { try body() }
        }
        return try outcome.get()
    }

    /// Opens a netlink socket that lives in this namespace.
    public func openSocket(protocol proto: Int32 = NETLINK_ROUTE) throws -> NetlinkSocket {
        try run { try NetlinkSocket(protocol: proto) }
    }

    // MARK: Named namespaces, the way `ip netns add/del` keeps them

    /// Creates a named namespace: a new network namespace bind-mounted on
    /// `/var/run/netns/NAME` (the run directory is made a shared mount first, as `ip` does, so
    /// the name is visible in every mount namespace).
    @discardableResult
    public static func create(named name: String) throws -> NetworkNamespace {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw SystemCallError("create", "netns \"\(name)\"", errno: .invalidArgument)
        }
        try prepareRunDirectory()
        let ns = NetworkNamespace.named(name)
        let fd = Glibc.open(ns.path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        if fd < 0 {
            throw SystemCallError("create", "\(ns)", errno: Errno(rawValue: errno))
        }
        Glibc.close(fd)
        var failure: SystemCallError?
        try onFreshThread {
            var rc = quiver_unshare(quiver_clone_newnet())
            if rc < 0 { failure = SystemCallError("unshare(CLONE_NEWNET)", "\(ns)", errno: Errno(rawValue: -rc)); return }
            rc = quiver_mount_bind("/proc/thread-self/ns/net", ns.path)
            if rc < 0 { failure = SystemCallError("mount --bind", "\(ns)", errno: Errno(rawValue: -rc)) }
        }
        if let failure {
            unlink(ns.path)
            throw failure
        }
        return ns
    }

    /// Creates many named namespaces from one thread (one `unshare` + bind mount each). Stops at
    /// the first failure and throws it; the ones made before stay (the caller journals the names
    /// before calling), mount points made for the rest are removed.
    ///
    /// The mount points are made first, as hard links to one new empty file: a bind mount only
    /// needs a directory entry to cover, and where the run directory is on a disk rather than
    /// tmpfs, a new inode each costs more than the namespace itself (ext4 without a journal
    /// scans past every recently deleted inode; BENCHMARKS.md has the numbers). Once mounted,
    /// every name shows its own namespace.
    ///
    /// `progress` is called on the creating thread with the number of namespaces ready so far,
    /// after each one.
    public static func create(named names: [String], progress: ((Int) -> Void)? = nil) throws {
        guard !names.isEmpty else { return }
        try prepareRunDirectory()
        let paths = names.map { NetworkNamespace.named($0).path }
        var made = 0
        var mounted = 0
        defer { for path in paths[mounted..<made] { unlink(path) } }
        var template: String?
        for path in paths {
            if let t = template {
                if link(t, path) == 0 {
                    made += 1
                    continue
                }
                // The name is taken: the same error creating the file would give.
                if errno == EEXIST { throw SystemCallError("create", "\(NetworkNamespace.named(names[made]))", errno: .fileExists) }
                // Otherwise (the template at its link limit, a file system without hard links):
                // a new file.
            }
            let fd = Glibc.open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
            if fd < 0 { throw SystemCallError("create", "\(NetworkNamespace.named(names[made]))", errno: Errno(rawValue: errno)) }
            Glibc.close(fd)
            template = path
            made += 1
        }
        var failure: Error?
        try onFreshThread {
            for (name, path) in zip(names, paths) {
                var rc = quiver_unshare(quiver_clone_newnet())
                if rc == 0 { rc = quiver_mount_bind("/proc/thread-self/ns/net", path) }
                if rc < 0 {
                    failure = SystemCallError("create", "\(NetworkNamespace.named(name))", errno: Errno(rawValue: -rc))
                    return
                }
                mounted += 1
                progress?(mounted)
            }
        }
        if let failure { throw failure }
    }

    /// Deletes a named namespace (unmount and remove its file). The kernel frees it, with every
    /// device in it, once nothing else holds it.
    public static func delete(named name: String) throws(SystemCallError) {
        let ns = NetworkNamespace.named(name)
        let rc = quiver_umount_detach(ns.path)
        if rc < 0, rc != -EINVAL { throw SystemCallError("umount", "\(ns)", errno: Errno(rawValue: -rc)) }
        if unlink(ns.path) != 0 {
            throw SystemCallError("unlink", "\(ns)", errno: Errno(rawValue: errno))
        }
    }

    /// Names of namespaces under the run directory.
    public static func listNamed() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []).sorted()
    }

    private static func prepareRunDirectory() throws(SystemCallError) {
        if mkdir(runDirectory, 0o755) != 0, errno != EEXIST {
            throw SystemCallError("mkdir", runDirectory, errno: Errno(rawValue: errno))
        }
        var rc = quiver_mount_make_shared(runDirectory)
        if rc == -EINVAL {
            // Not a mount point yet: bind it onto itself, then share it.
            rc = quiver_mount_bind(runDirectory, runDirectory)
            if rc == 0 { rc = quiver_mount_make_shared(runDirectory) }
        }
        if rc < 0 { throw SystemCallError("mount --make-shared", runDirectory, errno: Errno(rawValue: -rc)) }
    }

    // MARK: Threads

    private final class Job: @unchecked Sendable {
        let work: () -> Void
        init(_ work: @escaping () -> Void) { self.work = work }
    }

    /// Runs `work` on a new OS thread and waits for it. Namespace changes made by `work` die with
    /// the thread.
    public static func onFreshThread(_ work: () -> Void) throws(SystemCallError) {
        let rc: Int32 = withoutActuallyEscaping(work) { work in
            let job = Unmanaged.passRetained(Job(work))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.work()
                return nil
            }, job.toOpaque())
            if rc != 0 {
                // Could not start a thread: never run namespace code on this one.
                job.release()
                return rc
            }
            pthread_join(thread, nil)
            return 0
        }
        if rc != 0 { throw SystemCallError("pthread_create", errno: Errno(rawValue: rc)) }
    }
}
