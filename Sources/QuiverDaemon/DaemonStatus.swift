import Foundation
import Glibc
import QuiverKernel

/// One topology as the daemon keeps it.
public struct TopologyStatus: Codable, Sendable, Equatable {
    /// `T`, or `T@node`.
    public var key: String
    public var topology: String
    public var node: String?
    public var source: String
    /// The last apply converged (or nothing was left to do).
    public var applied = false
    public var lastReconcile: Date?
    public var lastReconcileSeconds: Double?
    public var reconciles = 0
    /// Applies that changed something after a drift event or a reconcile found a difference.
    public var repairs = 0
    public var lastRepair: Date?
    /// From the first event to the fabric proven converged again.
    public var lastRepairSeconds: Double?
    /// What the last repair found and did, in one line each.
    public var lastRepairFound: [String] = []
    public var lastRepairDid: [String] = []
    /// What the daemon could not fix (a conflict, an apply that failed, a file that no longer
    /// validates); nil when all is well.
    public var problem: String?

    public init(key: String, topology: String, node: String?, source: String) {
        self.key = key
        self.topology = topology
        self.node = node
        self.source = source
    }
}

/// What the daemon writes to `/run/quiver/daemon.json` after every change of its state, for
/// `quiver status` and `quiver vm list` (written atomically; read only if it is Quiver's own).
public struct DaemonStatus: Codable, Sendable, Equatable {
    public var pid: Int32
    public var startedAt: Date
    public var updatedAt: Date
    public var configDirectory: String
    public var topologies: [TopologyStatus] = []
    public var guests: [GuestWatch] = []
    /// Persistent records that could not be used, and why (reported, never half-applied).
    public var unusable: [String] = []

    public static let fileName = "daemon.json"

    public init(pid: Int32, startedAt: Date, configDirectory: String) {
        self.pid = pid
        self.startedAt = startedAt
        updatedAt = startedAt
        self.configDirectory = configDirectory
    }

    public func save() throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        try TrustedDirectory.open(TrustedDirectory.runRoot, create: true)!.write(Self.fileName, try e.encode(self))
    }

    /// The last status a daemon wrote, if any; `running` tells whether that daemon is still alive.
    public static func load() -> (status: DaemonStatus, running: Bool)? {
        guard let dir = try? TrustedDirectory.open(TrustedDirectory.runRoot, create: false),
              let data = (try? dir.read(fileName)) ?? nil else { return nil }
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        guard let s = try? d.decode(DaemonStatus.self, from: data) else { return nil }
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(s.pid)/cmdline"))) ?? Data()
        let alive = kill(s.pid, 0) == 0 && cmdline.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "daemon" }
        return (s, alive)
    }

    /// The daemon's view of a guest, if a running daemon supervises it.
    public static func guest(topology: String, host: String) -> GuestWatch? {
        guard let (s, running) = load(), running else { return nil }
        return s.guests.first { $0.topology == topology && $0.host == host }
    }
}
