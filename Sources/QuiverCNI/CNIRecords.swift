import Foundation
import QuiverBandwidth
import QuiverValues

/// quiver-cni's records: JSON files in `/run/quiver/cni/net-INODE/`, the directory of the
/// runtime's network namespace (this process's) — a node's; namespaces that stand in for several
/// nodes on one machine keep theirs apart. Caches for DEL, CHECK and GC: the kernel stays the
/// truth, the tags the proof of ownership.
enum CNIRecords {
    static func directory(create: Bool) throws -> TrustedDirectory? {
        var st = stat()
        guard stat("/proc/self/ns/net", &st) == 0 else { throw CNIError(.ioFailure, "cannot read this process's network namespace") }
        return try TrustedDirectory.run(["cni", "net-\(st.st_ino)"], create: create)
    }

    /// The record `name`, if there is one that decodes.
    static func read<T: Decodable>(_ name: String, as type: T.Type) throws -> T? {
        try directory(create: false)?.read(name).flatMap { try? JSONDecoder().decode(T.self, from: $0) }
    }

    static func write(_ name: String, _ value: some Encodable) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        try directory(create: true)!.write(name, try e.encode(value))
    }

    static func remove(_ name: String) throws {
        _ = try directory(create: false)?.remove(name)
    }

    /// A shaper's run, with a device that carries something foreign turned into the conflict
    /// error (code 100): the shaper refuses it before it changes anything.
    static func shaping<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as OwnershipConflict {
            throw CNIError(.conflict, "\(e)", details: "quiver-cni changed nothing; remove what is there, or leave this interface to its owner")
        }
    }
}
