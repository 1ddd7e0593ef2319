import Foundation
import Glibc

/// A guest's cgroup, as a zone's caps: memory (the guest's RAM plus ``overheadMiB`` for qemu
/// itself), CPU (`cpu-cap`, percent of one CPU, as SmartOS `cpu_cap`), and a ceiling on tasks.
/// Quiver makes `quiver/NAME` (a topology's guest: `quiver/T-H`) under the root of each
/// hierarchy it needs and touches nothing else; it removes them once the guest is gone.
///
/// cgroup v1 (separate `cpu`, `cpuacct`, `memory` and `pids` hierarchies, as on these machines) is
/// what is tested. Under a cgroup v2 root (`/sys/fs/cgroup` itself cgroup2) the same limits are
/// written as `memory.max`, `cpu.max` and `pids.max` in one directory.
public struct GuestCgroup: Sendable, Codable, Equatable {
    /// The directories made, one per hierarchy.
    public var paths: [String]
    public var memoryBytes: UInt64
    /// Percent of one CPU; nil: no CPU cap.
    public var cpuCap: Int?
    public var pidsMax: Int

    public static let root = "/sys/fs/cgroup"
    /// What qemu needs besides the guest's RAM (code, TCG's translation buffer, device state).
    public static let overheadMiB = 512
    public static let pidsMax = 256
    static let cfsPeriod = 100_000

    /// True when `/sys/fs/cgroup` is a cgroup2 mount (only its root has `cgroup.controllers`).
    public static var unified: Bool { access(root + "/cgroup.controllers", F_OK) == 0 }

    /// The directories `guest` has or will have (`guest` is one path component of safe bytes,
    /// checked before a jail starts).
    public static func paths(for guest: String) -> [String] {
        unified ? ["\(root)/quiver/\(guest)"] : ["cpu", "cpuacct", "memory", "pids"].map { "\(root)/\($0)/quiver/\(guest)" }
    }

    /// Makes the cgroups of `guest` and writes its limits.
    public static func make(_ guest: String, memoryMiB: Int, cpuCap: Int?) throws -> GuestCgroup {
        let g = GuestCgroup(paths: paths(for: guest), memoryBytes: UInt64(memoryMiB + overheadMiB) << 20, cpuCap: cpuCap, pidsMax: pidsMax)
        if unified { try enableControllers(under: "\(root)/quiver/\(guest)") }
        for p in g.paths { try makeDirectories(p) }
        for p in g.paths { try g.writeLimits(p) }
        return g
    }

    func writeLimits(_ p: String) throws {
        let quota = cpuCap.map { String($0 * Self.cfsPeriod / 100) }
        if Self.unified {
            try Self.write(p + "/memory.max", String(memoryBytes))
            try Self.write(p + "/pids.max", String(pidsMax))
            try Self.write(p + "/cpu.max", "\(quota ?? "max") \(Self.cfsPeriod)")
            return
        }
        switch (p as NSString).pathComponents.dropFirst(4).first {
        case "memory": try Self.write(p + "/memory.limit_in_bytes", String(memoryBytes))
        case "pids": try Self.write(p + "/pids.max", String(pidsMax))
        case "cpu":
            try Self.write(p + "/cpu.cfs_period_us", String(Self.cfsPeriod))
            try Self.write(p + "/cpu.cfs_quota_us", quota ?? "-1")
        default: break
        }
    }

    /// Puts `pid` into every one of its cgroups.
    public func add(_ pid: Int32) throws {
        for p in paths { try Self.write(p + "/cgroup.procs", String(pid)) }
    }

    /// The processes in it (from the pids hierarchy, or the unified one).
    public static func processes(of guest: String) -> [Int32] {
        guard let p = paths(for: guest).last, let text = try? String(contentsOfFile: p + "/cgroup.procs", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Removes the cgroups of `guest` once they hold no process, then `quiver` when
    /// empty. Missing ones are fine.
    public static func remove(_ guest: String) throws {
        for p in paths(for: guest) {
            var removed = false
            for _ in 0..<50 {
                if rmdir(p) == 0 || errno == ENOENT { removed = true; break }
                guard errno == EBUSY else { break }
                Thread.sleep(forTimeInterval: 0.02)   // the last task is still exiting
            }
            guard removed else { throw VMError("cannot remove the cgroup \(p): \(String(cString: strerror(errno)))") }
            _ = rmdir((p as NSString).deletingLastPathComponent)   // `quiver`, when it is empty
        }
    }

    static func makeDirectories(_ p: String) throws {
        var path = ""
        for c in p.split(separator: "/") {
            path += "/" + c
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw VMError("cannot make the cgroup \(path): \(String(cString: strerror(errno)))") }
        }
    }

    /// cgroup v2: the root must already hand the three controllers down (Quiver does not change
    /// a cgroup it did not make); `quiver` then hands them to its guests.
    static func enableControllers(under p: String) throws {
        let delegated = ((try? String(contentsOfFile: root + "/cgroup.subtree_control", encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace)
        let missing = ["memory", "cpu", "pids"].filter { !delegated.contains(Substring($0)) }
        guard missing.isEmpty else {
            throw VMError("the cgroup v2 root does not enable \(missing.joined(separator: ", ")) for its children (\(root)/cgroup.subtree_control); "
                          + "enable them there (systemd does by default) so Quiver can cap its guests")
        }
        try makeDirectories(root + "/quiver")
        try write(root + "/quiver/cgroup.subtree_control", "+memory +cpu +pids")
    }

    static func write(_ file: String, _ value: String) throws {
        let f = open(file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
        guard f >= 0 else { throw VMError("cannot open \(file): \(String(cString: strerror(errno)))") }
        defer { close(f) }
        let b = Array(value.utf8)
        guard Glibc.write(f, b, b.count) == b.count else { throw VMError("cannot write \(value) to \(file): \(String(cString: strerror(errno)))") }
    }
}
