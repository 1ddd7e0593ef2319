import Foundation
import QuiverKernel
import QuiverTopology

/// A topology recorded as persistent by `quiver enable`: what the daemon applies when it starts
/// (after a reboot), like a `dladm` VNIC made without `-t`. It holds a copy of the file as it was
/// when enabled, so editing or removing the source changes nothing until the next `enable`; paths
/// in it (images, kernels) stay relative to the source file, as they were validated.
public struct PersistentRecord: Codable, Sendable, Equatable {
    public var topology: String
    /// The absolute path it was enabled from (relative paths in the file are read against it).
    public var source: String
    /// The file's text at `enable`.
    public var text: String
    /// Who owned the source file (a guest's files must be that user's to read).
    public var owner: UInt32
    /// `--node` at `enable`, when given.
    public var node: String?
    /// `--fabric-netns` at `enable`, when given.
    public var fabricNetns: String?
    public var enabledAt: Date

    /// The recorded file, parsed and validated again (the machine may have changed since
    /// `enable`: a missing image, a reused address). Errors name the source file's lines.
    public func parsed() throws -> Topology {
        let t = try TopologyParser.parse(text, file: source, fileOwner: owner)
        guard t.name == topology else {
            throw PersistentStoreError("the record of \(topology) holds a file for topology \(InvalidValue.quoted(t.name))",
                                       "`quiver disable \(topology)` and enable the file again")
        }
        return t
    }
}

/// A refusal from the persistent store: what is wrong, and what to do.
public struct PersistentStoreError: Error, Sendable, CustomStringConvertible {
    public var problem: String
    public var remedy: String
    public init(_ problem: String, _ remedy: String) {
        self.problem = problem
        self.remedy = remedy
    }
    public var description: String { remedy.isEmpty ? problem : "\(problem); \(remedy)" }
}

/// Where persistent records live: `/etc/quiver/topologies.d` (or a directory given with
/// `--config-dir`), one `NAME.json` per topology, opened as a ``TrustedDirectory`` — owned by
/// the user Quiver runs as, writable by no one else, never through a symbolic link — and made
/// 0700 when missing. Each record is written to a new file and renamed into place, so a reader
/// (the daemon at boot) sees the old record or the new one, never half of one.
public struct PersistentStore: Sendable {
    public static let defaultDirectory = "/etc/quiver/topologies.d"
    public let path: String

    /// `path` must be absolute; it is checked when first opened, not here.
    public init(path: String = PersistentStore.defaultDirectory) throws {
        guard path.hasPrefix("/"), !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            throw PersistentStoreError("--config-dir \(InvalidValue.quoted(path)) is not an absolute path without . or .. components",
                                       "give an absolute path such as \(PersistentStore.defaultDirectory)")
        }
        self.path = path
    }

    private func directory(create: Bool) throws -> TrustedDirectory? {
        try TrustedDirectory.open(path, create: create)
    }

    private static func fileName(_ name: TopologyName) -> String { name.rawValue + ".json" }

    /// Records `file` as persistent: read and validated as `quiver apply` would (placed on
    /// `node` when given), then copied. Enabling a topology again replaces its record.
    @discardableResult
    public func enable(file: String, node: String?, fabricNetns: NamespaceName?, at date: Date = Date()) throws -> PersistentRecord {
        let absolute = URL(fileURLWithPath: file).absoluteURL.standardized.path
        let (text, owner) = try TopologyParser.readFile(absolute)
        let t = try TopologyParser.parse(text, file: absolute, fileOwner: owner)
        if let node {
            guard !t.nodes.isEmpty else {
                throw PersistentStoreError("--node \(InvalidValue.quoted(node)): \(absolute) has no `nodes:`", "leave --node out")
            }
            guard t.node(named: node) != nil else {
                throw PersistentStoreError("--node \(InvalidValue.quoted(node)): \(absolute) has no such node (its nodes: \(t.nodes.map(\.name).joined(separator: ", ")))",
                                           "name one of them")
            }
        }
        let name = try TopologyName(validating: t.name)
        let record = PersistentRecord(topology: name.rawValue, source: absolute, text: text, owner: owner, node: node,
                                      fabricNetns: fabricNetns?.rawValue, enabledAt: date)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        try directory(create: true)!.write(Self.fileName(name), try e.encode(record))
        return record
    }

    /// Removes the record of `name`; true when there was one. The running fabric is left alone.
    @discardableResult
    public func disable(_ name: TopologyName) throws -> Bool {
        guard let dir = try directory(create: false) else { return false }
        return try dir.remove(Self.fileName(name))
    }

    /// The record of `name`, if any.
    public func record(_ name: TopologyName) throws -> PersistentRecord? {
        guard let dir = try directory(create: false), let data = try dir.read(Self.fileName(name), limit: Limits.fileBytes * 2 + 65536) else { return nil }
        return try Self.decode(data, file: dir.childPath(Self.fileName(name)))
    }

    /// One entry of the store: a record, or why the file under that name could not be read.
    public struct Entry: Sendable {
        public var name: String
        public var record: Result<PersistentRecord, PersistentStoreError>
    }

    /// Every record, by name. One that cannot be read is an entry with its error (reported, never
    /// half-applied); files that are not `NAME.json` for a valid name are listed as errors too.
    public func entries() throws -> [Entry] {
        guard let dir = try directory(create: false) else { return [] }
        return try dir.entries().filter { !$0.hasPrefix(".") }.sorted().map { f in
            let file = dir.childPath(f)
            guard let name = TopologyName(recordFile: f) else {
                return Entry(name: f, record: .failure(PersistentStoreError("\(file) is not NAME.json for a topology name", "remove it; `quiver enable` writes records")))
            }
            do {
                guard let data = try dir.read(f, limit: Limits.fileBytes * 2 + 65536) else {
                    return Entry(name: name.rawValue, record: .failure(PersistentStoreError("\(file) is gone", "")))
                }
                let r = try Self.decode(data, file: file)
                guard r.topology == name.rawValue else {
                    return Entry(name: name.rawValue, record: .failure(PersistentStoreError("\(file) records topology \(InvalidValue.quoted(r.topology))", "remove it and enable the file again")))
                }
                return Entry(name: name.rawValue, record: .success(r))
            } catch let e as PersistentStoreError {
                return Entry(name: name.rawValue, record: .failure(e))
            } catch {
                return Entry(name: name.rawValue, record: .failure(PersistentStoreError("\(error)", "")))
            }
        }
    }

    private static func decode(_ data: Data, file: String) throws -> PersistentRecord {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        do { return try d.decode(PersistentRecord.self, from: data) } catch {
            throw PersistentStoreError("\(file) is not a record Quiver wrote", "remove it and enable the file again")
        }
    }
}

extension TopologyName {
    /// `NAME.json` in the persistent store, for a valid topology name.
    init?(recordFile: String) {
        guard recordFile.hasSuffix(".json") else { return nil }
        try? self.init(validating: String(recordFile.dropLast(5)))
    }
}
