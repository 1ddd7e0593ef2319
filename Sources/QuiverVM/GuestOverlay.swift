import Foundation
import Glibc
import QuiverKernel
import QuiverNetlink
import SystemPackage

/// Which base an overlay was made over, and how large: `overlay.json` next to it. A base is
/// known by its file's identity (device, inode, size, modification time), so a base rebuilt in
/// place is noticed as well as a different `image:`.
public struct OverlayOrigin: Sendable, Codable, Equatable {
    public var path: String
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modified: Int64
    public var format: String
    /// The overlay's virtual size.
    public var overlaySize: UInt64
    public var made: Date

    /// The same base file, unchanged.
    func sameBase(as o: OverlayOrigin) -> Bool {
        (path, device, inode, size, modified, format) == (o.path, o.device, o.inode, o.size, o.modified, o.format)
    }
}

/// A guest's copy-on-write overlay (`qemu-img create -f qcow2 -F FORMAT -b BASE`), kept in its
/// state directory (``GuestState``) across applies and restarts. qemu-img writes it through a
/// descriptor Quiver opened there (`/proc/self/fd/3`) and never opens the base (`-u`): the base's
/// name in the overlay's header is a note for people; qemu is always handed the base itself.
public enum GuestOverlay {
    /// How every notice of an overlay's starts.
    public static let noticePrefix = "overlay "

    /// Makes sure `state` holds an overlay of `size` (nil: the base's) over the open base `base`
    /// (at `path`, `info` from qemu-img): made when missing, grown when `size` grew, made anew —
    /// and said so in the returned notice — when the base changed or `size` shrank.
    public static func prepare(base: FileDescriptor, path: String, info: ImageInfo, size: UInt64?, in state: TrustedDirectory,
                               qemuImg: String = "qemu-img") throws -> String? {
        var st = stat()
        guard fstat(base.rawValue, &st) == 0 else { throw SystemCallError("fstat", path, errno: Errno(rawValue: errno)) }
        let want = OverlayOrigin(path: path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                                 modified: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec), format: info.format,
                                 overlaySize: max(size ?? info.virtualSize, info.virtualSize), made: Date())
        let had = try state.read(GuestState.Entry.origin.rawValue, limit: 1 << 16).flatMap { try? JSONDecoder().decode(OverlayOrigin.self, from: $0) }
        let exists = state.kind(of: GuestState.Entry.overlay.rawValue) != nil
        if exists, let had, had.sameBase(as: want) {
            if had.overlaySize == want.overlaySize { return nil }
            if want.overlaySize > had.overlaySize {
                try resize(in: state, to: want.overlaySize, qemuImg: qemuImg)
                var grown = had
                grown.overlaySize = want.overlaySize
                try state.write(GuestState.Entry.origin.rawValue, try JSONEncoder().encode(grown))
                return "overlay grown from \(had.overlaySize) to \(want.overlaySize) bytes (disk-size); what the guest wrote is kept"
            }
        }
        try make(want, in: state, qemuImg: qemuImg)
        guard exists else { return nil }
        let why: String
        if let had, had.sameBase(as: want) {
            why = "disk-size shrank from \(had.overlaySize) to \(want.overlaySize) bytes"
        } else if let had, had.path != want.path {
            why = "its image changed from \(had.path) to \(want.path)"
        } else {
            why = had == nil ? "no record said which base it was made over" : "its image \(path) changed since the overlay was made"
        }
        return "overlay made anew: \(why); what the guest had written to its disk is gone"
    }

    /// A new overlay, written beside the old one and renamed over it once whole.
    static func make(_ origin: OverlayOrigin, in state: TrustedDirectory, qemuImg: String) throws {
        let tmp = GuestState.Entry.newOverlay.rawValue
        let f = try state.create(tmp)
        defer { try? f.close() }
        let o = try Spawn.run([qemuImg, "create", "-q", "-f", "qcow2", "-u", "-F", origin.format, "-b", origin.path,
                               "/proc/self/fd/3", String(origin.overlaySize)], descriptors: [f.rawValue])
        guard o.status == 0 else {
            _ = try? state.remove(tmp)
            throw VMError("qemu-img create of the overlay over \(origin.path) failed: \(o.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        try state.rename(tmp, to: GuestState.Entry.overlay.rawValue)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try state.write(GuestState.Entry.origin.rawValue, try enc.encode(origin))
    }

    /// Grows the overlay. It is opened without its backing file (`"backing": null`), so qemu-img
    /// opens nothing but the overlay, through Quiver's descriptor.
    static func resize(in state: TrustedDirectory, to size: UInt64, qemuImg: String) throws {
        guard let f = try state.openExisting(GuestState.Entry.overlay.rawValue, writable: true) else { throw VMError("the overlay vanished while it was grown") }
        defer { try? f.close() }
        let spec = #"json:{"driver":"qcow2","file":{"driver":"file","filename":"/proc/self/fd/3"},"backing":null}"#
        let o = try Spawn.run([qemuImg, "resize", "-q", spec, String(size)], descriptors: [f.rawValue])
        guard o.status == 0 else { throw VMError("qemu-img resize of the overlay failed: \(o.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
    }
}
