import Foundation
import QuiverKernel
import QuiverTopology

/// Per-topology record under `/run/quiver/topologies`: a cache, never the truth (apply and
/// destroy find owned objects in the kernel). It holds the file last applied and what an apply is
/// about to create — written *before* creating it, so a crash between creating an object and
/// tagging it still leaves it provably ours: namespaces (tagged by their `lo` once made) and
/// fabric links (tagged by `ifalias` in a second request, since the kernel ignores an alias given
/// with the create).
package struct Journal: Codable, Sendable, Equatable {
    package var topology: String
    /// The node of a multi-node file this record is for (each node keeps its own).
    package var node: String?
    /// Its `kind: vm` hosts (a node's destroy stops only its own guests).
    package var guests: [String]?
    /// The fabric namespace it was applied in (`--fabric-netns`; nil: the host's), so that a
    /// verify of every node of a simulated fabric finds each node's counters.
    package var fabricNamespace: String?
    package var file: String?
    package var pendingNamespaces: [String] = []
    /// Fabric links an apply is creating, until it has tagged them.
    package var pendingLinks: [String] = []
    package var appliedAt: Date?
    /// ``Topology/sourceDigest`` of the file text last applied.
    package var source: String?
    /// A new random id per apply: `appliedAt` has whole seconds, two applies in one second differ here.
    package var applyID: String?

    package init(topology: TopologyName, node: String? = nil) {
        self.topology = topology.rawValue
        self.node = node
    }

    /// The record's file: `T.json`, or `T@node.json`.
    static func fileName(_ topology: String, node: String?) -> String { KernelNames(topology, node: node).scope + ".json" }

    /// `/run/quiver/topologies`, checked (see ``TrustedDirectory``); nil when it does not exist
    /// and `create` is false.
    package static func directory(create: Bool) throws -> TrustedDirectory? {
        try TrustedDirectory.run(["topologies"], create: create)
    }

    package static var directoryPath: String { TrustedDirectory.runRoot + "/topologies" }

    package static func load(_ topology: TopologyName, node: String? = nil) throws -> Journal? {
        guard let dir = try directory(create: false), let d = try dir.read(fileName(topology.rawValue, node: node)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(Journal.self, from: d)
    }

    package func save() throws {
        let name = try TopologyName(validating: topology)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        try Journal.directory(create: true)!.write(Journal.fileName(name.rawValue, node: node), try e.encode(self))
    }

    package static func remove(_ topology: TopologyName, node: String? = nil) throws {
        try directory(create: false)?.remove(fileName(topology.rawValue, node: node))
    }

    /// The records of every node of `topology` (a multi-node file applied on this host, as the
    /// tests' simulation does).
    package static func nodes(of topology: TopologyName) throws -> [Journal] {
        try all().filter { $0.topology == topology.rawValue && $0.node != nil }
    }

    /// Topologies with a record.
    package static func all() throws -> [Journal] {
        guard let dir = try directory(create: false) else { return [] }
        return try dir.entries().filter { $0.hasSuffix(".json") }.compactMap { f -> (TopologyName, String?)? in
            let scope = f.dropLast(5).split(separator: "@", maxSplits: 1).map(String.init)
            guard let t = TopologyName(file: scope[0] + ".json") else { return nil }
            if scope.count == 2 { return (try? ObjectName(validating: scope[1])) == nil ? nil : (t, scope[1]) }
            return (t, nil)
        }.compactMap { try load($0.0, node: $0.1) }
    }

    enum CodingKeys: String, CodingKey { case topology, node, guests, fabricNamespace, file, pendingNamespaces, pendingLinks, appliedAt, source, applyID }

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        topology = try c.decode(String.self, forKey: .topology)
        node = try c.decodeIfPresent(String.self, forKey: .node)
        guests = try c.decodeIfPresent([String].self, forKey: .guests)
        fabricNamespace = try c.decodeIfPresent(String.self, forKey: .fabricNamespace)
        file = try c.decodeIfPresent(String.self, forKey: .file)
        pendingNamespaces = try c.decodeIfPresent([String].self, forKey: .pendingNamespaces) ?? []
        // Records written before links were journaled have none.
        pendingLinks = try c.decodeIfPresent([String].self, forKey: .pendingLinks) ?? []
        appliedAt = try c.decodeIfPresent(Date.self, forKey: .appliedAt)
        source = try c.decodeIfPresent(String.self, forKey: .source)
        applyID = try c.decodeIfPresent(String.self, forKey: .applyID)
    }
}

extension TopologyName {
    /// The name of a record file `NAME.json`, if NAME is a valid topology name.
    init?(file: String) {
        guard file.hasSuffix(".json") else { return nil }
        try? self.init(validating: String(file.dropLast(5)))
    }
}

/// An exclusive `flock` per link group: two applies (or an apply and a destroy) of one topology
/// run one after the other — and so do those of two topologies whose names hash to the same link
/// group, so one can never see the other's links half made. Released when the lock is
/// deinitialised or the process dies. `destroy` removes the lock file while holding it; a waiter
/// that then wakes up on the removed file notices (the name no longer names its inode) and locks
/// the new one.
package final class TopologyLock {
    private let fd: Int32
    private let name: String
    private let topology: TopologyName
    private let directory: TrustedDirectory
    /// The lock file did not exist before this lock: a caller that ends up changing nothing
    /// removes it again, so that not even a lock file is left behind.
    package let created: Bool

    package init(_ topology: TopologyName) throws {
        self.topology = topology
        directory = try Journal.directory(create: true)!
        name = TopologyLock.fileName(topology)
        created = directory.kind(of: name) == nil
        while true {
            let fd = try directory.openLockFile(name)
            while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
            var held = stat(), named = stat()
            if fstat(fd, &held) == 0, fstatat(directory.fd, name, &named, AT_SYMLINK_NOFOLLOW) == 0,
               held.st_ino == named.st_ino, held.st_dev == named.st_dev {
                self.fd = fd
                return
            }
            close(fd)
        }
    }

    /// `group-51XXXXXX.lock`: the lock's file, named by the topology's link group.
    package static func fileName(_ topology: TopologyName) -> String {
        "group-" + String(KernelNames(topology.rawValue).group, radix: 16) + ".lock"
    }

    /// Removes the lock file (the topology is gone) unless another topology of the same link
    /// group still has a record; the lock stays held until deinit.
    package func removeFile() {
        let group = KernelNames(topology.rawValue).group
        let others = ((try? Journal.all()) ?? []).contains { $0.topology != topology.rawValue && KernelNames($0.topology).group == group }
        if !others { _ = try? directory.remove(name) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
