import Foundation
import Glibc
import QuiverKernel

/// A guest's run directory, `/run/quiver/vms/TOPOLOGY/HOST` (mode 0700): qemu's pid, QMP and agent
/// sockets, console log, a jailed qemu's log and the (empty) mount point of its root, and Quiver's
/// `record.json`. All of it is root's: a jailed qemu is handed the sockets and files open. It is a ``TrustedDirectory`` — no
/// component a link, each owned by the user Quiver runs as and writable by no one else — and it
/// holds only those entries, each of its kind: a directory found with anything else (a link
/// planted where qemu will write, a file Quiver did not make) is refused, never reused.
public enum GuestDirectory {
    public static let root = TrustedDirectory.runRoot + "/vms"

    /// What Quiver and qemu keep in a guest's directory.
    public enum Entry: String, CaseIterable, Sendable {
        case qmp = "qmp.sock"
        case agent = "agent.sock"
        /// qemu-guest-agent's channel (`agent: qga`).
        case guestAgent = "qga.sock"
        case console = "console.log"
        case pidfile = "qemu.pid"
        case record = "record.json"
        /// A jailed qemu's standard error.
        case log = "qemu.log"
        /// Where a jailed qemu's root is mounted, in its own mount namespace only: empty here.
        case root = "root"
        /// Written by ``VMLauncher/stop(directory:powerdownTimeout:guestShutdownTimeout:)`` before it
        /// stops qemu: the guest was stopped on purpose, so the daemon leaves it stopped.
        case stopRequest = "stopped"

        /// The kind of file it is.
        var type: mode_t { self == .qmp || self == .agent || self == .guestAgent ? S_IFSOCK : self == .root ? S_IFDIR : S_IFREG }
    }

    /// The one place a guest's run path is made: from a topology's and a host's names, each
    /// validated (neither can hold `/` or `.`).
    public static func path(topology: TopologyName, host: ObjectName) -> String { "\(root)/\(topology.rawValue)/\(host.rawValue)" }

    /// The name a topology's guest has (its qemu `-name`, its cgroup `quiver/NAME`): `T-H`.
    public static func guestName(topology: TopologyName, host: ObjectName) -> String { "\(topology.rawValue)-\(host.rawValue)" }

    /// The topology and host of a topology's guest directory `root/T/H`; nil for any other
    /// directory.
    public static func names(ofDirectory directory: String) -> (topology: TopologyName, host: ObjectName)? {
        guard directory.hasPrefix(root + "/") else { return nil }
        let parts = directory.dropFirst(root.count + 1).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, let t = try? TopologyName(validating: parts[0]), let h = try? ObjectName(validating: parts[1]) else { return nil }
        return (t, h)
    }

    /// The guest name of a topology's guest directory `root/T/H`; nil for any other directory.
    public static func guestName(directory: String) -> String? {
        names(ofDirectory: directory).map { guestName(topology: $0.topology, host: $0.host) }
    }

    /// An entry of the guest directory at `directory`.
    public static func file(_ entry: Entry, in directory: String) -> String { directory + "/" + entry.rawValue }

    /// Opens the guest directory at `path` (absolute), making it when `create`; nil when it does
    /// not exist. Refuses it when it holds anything but its own entries.
    public static func open(_ path: String, create: Bool) throws -> TrustedDirectory? {
        guard let dir = try TrustedDirectory.open(path, create: create) else { return nil }
        try checkEntries(dir)
        return dir
    }

    static func checkEntries(_ dir: TrustedDirectory) throws {
        for name in try dir.entries() {
            guard let want = Entry(rawValue: name)?.type else {
                throw StateDirectoryError(dir.path, "holds \(InvalidValue.quoted(name)), which Quiver does not keep there; it is not reused",
                                          "look at it and remove it (or the whole directory once its guest is stopped)")
            }
            guard let k = dir.kind(of: name) else { continue }
            if k.type != want || k.uid != geteuid() {
                let what = k.type == S_IFLNK ? "a symbolic link" : k.uid != geteuid() ? "owned by uid \(k.uid)" : "not the kind of file Quiver makes there"
                throw StateDirectoryError(dir.childPath(name), "is \(what); it is not reused", "remove it")
            }
        }
    }

    /// Removes a stopped guest's directory: its own entries, then the directory. Anything else
    /// in it is left where it is, and the error names it.
    public static func remove(_ path: String) throws {
        guard let dir = try TrustedDirectory.open(path, create: false) else { return }
        let parent = (path as NSString).deletingLastPathComponent
        let foreign = try dir.entries().filter { Entry(rawValue: $0) == nil }
        for name in try dir.entries() where Entry(rawValue: name) != nil {
            if Entry(rawValue: name) == .root { try dir.removeDirectory(name) } else { try dir.remove(name) }
        }
        guard foreign.isEmpty else {
            throw StateDirectoryError(path, "still holds " + foreign.prefix(5).map { InvalidValue.quoted($0) }.joined(separator: ", ")
                                      + ", which Quiver did not make; it removed only its own files", "look at them and remove the directory yourself")
        }
        try TrustedDirectory.open(parent, create: false)?.removeDirectory((path as NSString).lastPathComponent)
    }

    /// Hosts that have a directory under `/run/quiver/vms/TOPOLOGY` (an entry whose name no
    /// host can have is not a guest's, and is left alone).
    public static func hosts(topology: TopologyName) throws -> [ObjectName] {
        try (TrustedDirectory.run(["vms", topology.rawValue], create: false)?.entries() ?? []).compactMap { try? ObjectName(validating: $0) }
    }

    /// Topologies that have a directory under `/run/quiver/vms`.
    public static func topologies() throws -> [TopologyName] {
        try (TrustedDirectory.run(["vms"], create: false)?.entries() ?? []).compactMap { try? TopologyName(validating: $0) }
    }

    /// Removes `/run/quiver/vms/TOPOLOGY` once it is empty (false when it is not, or is gone).
    @discardableResult
    public static func removeTopology(_ topology: TopologyName) throws -> Bool {
        guard let vms = try TrustedDirectory.run(["vms"], create: false) else { return false }
        do { return try vms.removeDirectory(topology.rawValue) } catch { return false }
    }
}
