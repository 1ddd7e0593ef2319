import Foundation

/// Per-topology record under `/run/quiver/topologies`: a cache, never the truth (apply and
/// destroy find owned objects in the kernel). It holds the file last applied and the namespaces an
/// apply is about to create — written *before* creating them, so a crash between creating a
/// namespace and tagging it still leaves it recognisably ours.
public struct Journal: Codable, Sendable, Equatable {
    public var topology: String
    public var file: String?
    public var pendingNamespaces: [String] = []
    public var appliedAt: Date?

    public static let directory = "/run/quiver/topologies"

    public static func path(_ topology: String) -> String { "\(directory)/\(topology).json" }

    public static func load(_ topology: String) -> Journal? {
        guard let d = FileManager.default.contents(atPath: path(topology)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(Journal.self, from: d)
    }

    public func save() throws {
        try FileManager.default.createDirectory(atPath: Journal.directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        let tmp = Journal.path(topology) + ".tmp"
        try e.encode(self).write(to: URL(fileURLWithPath: tmp))
        if rename(tmp, Journal.path(topology)) != 0 { throw CocoaError(.fileWriteUnknown) }
    }

    public static func remove(_ topology: String) {
        try? FileManager.default.removeItem(atPath: path(topology))
    }

    /// Topologies with a record.
    public static func all() -> [Journal] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".json") }.sorted().compactMap { load(String($0.dropLast(5))) }
    }
}

/// An exclusive `flock` on a topology: two applies (or an apply and a destroy) of the same
/// topology run one after the other. Released when the lock is deinitialised or the process dies.
/// `destroy` removes the lock file while holding it; a waiter that then wakes up on the removed
/// file notices (the path no longer names its inode) and locks the new one.
public final class TopologyLock {
    private let fd: Int32
    private let path: String

    public init(_ topology: String) throws {
        try FileManager.default.createDirectory(atPath: Journal.directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        path = "\(Journal.directory)/\(topology).lock"
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission) }
            while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
            var held = stat(), named = stat()
            if fstat(fd, &held) == 0, stat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                self.fd = fd
                return
            }
            close(fd)
        }
    }

    /// Removes the lock file (the topology is gone); the lock stays held until deinit.
    public func removeFile() {
        unlink(path)
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
