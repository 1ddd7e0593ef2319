import Foundation
import Glibc
import QuiverKernel

/// A guest's lasting state, `/var/lib/quiver/vms/TOPOLOGY/HOST` (mode 0700): what must outlive
/// its qemu and a re-apply — the copy-on-write overlay over its base image (with a note of which
/// base it was made over), its NoCloud seed and its UEFI variable store. `destroy` removes it;
/// `quiver vm stop` and `apply` keep it. Like a run directory it is a ``TrustedDirectory`` that
/// holds only its own entries: one found with anything else is refused, never reused.
public enum GuestState {
    public static let root = "/var/lib/quiver/vms"

    public enum Entry: String, CaseIterable, Sendable {
        case overlay = "overlay.qcow2"
        /// Which base the overlay was made over (``OverlayOrigin``).
        case origin = "overlay.json"
        case seed = "seed.iso"
        case efiVars = "efivars.fd"
        /// An overlay being made (renamed over `overlay` once whole).
        case newOverlay = ".overlay.qcow2.new"
    }

    public static func path(topology: TopologyName, host: ObjectName) -> String { "\(root)/\(topology.rawValue)/\(host.rawValue)" }

    /// The state directory of the guest whose run directory is `runDirectory` (same topology and
    /// host names), or nil when that is not a topology's guest directory.
    public static func path(forRunDirectory runDirectory: String) -> String? {
        GuestDirectory.names(ofDirectory: runDirectory).map { path(topology: $0.topology, host: $0.host) }
    }

    /// Opens (making it, 0700, when `create`) the state directory at `path`; nil when it does not
    /// exist. Refuses it when it holds anything but its own entries, or one that is not a file.
    public static func open(_ path: String, create: Bool) throws -> TrustedDirectory? {
        guard let dir = try TrustedDirectory.open(path, create: create) else { return nil }
        for name in try dir.entries() {
            guard Entry(rawValue: name) != nil else {
                throw StateDirectoryError(dir.childPath(name), "is not something Quiver keeps in a guest's state directory; it is not reused",
                                          "look at it and remove it")
            }
            if let k = dir.kind(of: name), k.type != S_IFREG || k.uid != geteuid() {
                throw StateDirectoryError(dir.childPath(name), k.type == S_IFLNK ? "is a symbolic link; it is not reused" : "is not a file of Quiver's; it is not reused", "remove it")
            }
        }
        return dir
    }

    /// Removes the state directory at `path`: its own entries, then the directory, then the
    /// topology's directory once empty. Anything else in it is left, and the error names it.
    public static func remove(_ path: String) throws {
        guard let dir = try TrustedDirectory.open(path, create: false) else { return }
        let foreign = try dir.entries().filter { Entry(rawValue: $0) == nil }
        for name in try dir.entries() where Entry(rawValue: name) != nil { try dir.remove(name) }
        guard foreign.isEmpty else {
            throw StateDirectoryError(path, "still holds " + foreign.prefix(5).map { InvalidValue.quoted($0) }.joined(separator: ", ")
                                      + ", which Quiver did not make; it removed only its own files", "look at them and remove the directory yourself")
        }
        let parent = (path as NSString).deletingLastPathComponent
        guard let up = try TrustedDirectory.open(parent, create: false) else { return }
        try up.removeDirectory((path as NSString).lastPathComponent)
        if (try? up.entries())?.isEmpty == true, let vms = try TrustedDirectory.open(root, create: false) {
            _ = try? vms.removeDirectory((parent as NSString).lastPathComponent)
        }
    }

    /// Hosts of `topology` that have a state directory.
    public static func hosts(topology: TopologyName) -> [ObjectName] {
        guard let dir = try? TrustedDirectory.open("\(root)/\(topology.rawValue)", create: false) else { return [] }
        return ((try? dir.entries()) ?? []).compactMap { try? ObjectName(validating: $0) }
    }
}
