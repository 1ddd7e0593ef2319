import Foundation
import Glibc

/// What `qemu-img info` says of a base image.
public struct ImageInfo: Sendable, Codable, Equatable {
    /// `qcow2` or `raw`.
    public var format: String
    public var virtualSize: UInt64

    public init(format: String, virtualSize: UInt64) {
        self.format = format
        self.virtualSize = virtualSize
    }
}

/// A guest's base image (`image:`): a qcow2 or raw disk, examined by `qemu-img info` on the very
/// descriptor Quiver opened (qemu-img reopens `/proc/self/fd/3`, that same file) — never judged
/// by its name. A qcow2 that would make qemu open another file (a backing file, an external data
/// file) or needs a key is refused, and so is a "raw" file that holds no partition table and no
/// file system qemu-img would call raw, whatever it is.
public enum DiskImage {
    /// The formats Quiver boots overlays of.
    public static let formats = ["qcow2", "raw"]

    /// What `path` is as a base image, or why it cannot be one: `.failure(("open", why))` when
    /// it cannot be opened as a guest file (``GuestFile``), `.failure(("image", why))` when it is
    /// not a disk image Quiver boots (validation, before anything changes).
    public static func examine(_ path: String, owner: UInt32?) -> Result<ImageInfo, DiskImageError> {
        do {
            let fd = try GuestFile.open(path, .read, owner: owner)
            defer { try? fd.close() }
            return .success(try inspect(fd.rawValue))
        } catch let e as GuestFileError {
            return .failure(DiskImageError(e.problem, opening: true))
        } catch let e as DiskImageError {
            return .failure(e)
        } catch {
            return .failure(DiskImageError("\(error)"))
        }
    }

    /// The format and virtual size of the open image `fd`.
    public static func inspect(_ fd: Int32, qemuImg: String = "qemu-img") throws(DiskImageError) -> ImageInfo {
        let o: Spawn.Outcome
        do {
            o = try Spawn.run([qemuImg, "info", "--output=json", "--force-share", "/proc/self/fd/3"], descriptors: [fd], captureOutput: true, limit: 1 << 20)
        } catch {
            throw DiskImageError(error.errno == ENOENT ? "qemu-img is not installed (apt install qemu-utils)" : "qemu-img cannot be started: \(error)")
        }
        guard o.status == 0 else {
            let why = o.stderr.split(separator: "\n").last.map(String.init) ?? "status \(o.status)"
            throw DiskImageError("qemu-img cannot read it as a disk image: \(why.replacingOccurrences(of: "/proc/self/fd/3", with: "the file"))")
        }
        guard let info = try? JSONSerialization.jsonObject(with: o.stdout) as? [String: Any], let format = info["format"] as? String,
              let size = (info["virtual-size"] as? NSNumber)?.uint64Value else {
            throw DiskImageError("qemu-img info gave no format and size for it")
        }
        guard formats.contains(format) else {
            throw DiskImageError("it is a \(format) image; Quiver boots qcow2 or raw (convert it: qemu-img convert -O qcow2 IN OUT)")
        }
        if info["backing-filename"] != nil {
            throw DiskImageError("it has a backing file of its own, which qemu would open by name; flatten it first (qemu-img convert -O qcow2 IN OUT)")
        }
        let specific = (info["format-specific"] as? [String: Any])?["data"] as? [String: Any] ?? [:]
        if specific["data-file"] != nil {
            throw DiskImageError("its data lives in an external data file, which qemu would open by name; convert it to one file (qemu-img convert -O qcow2 IN OUT)")
        }
        if (info["encrypted"] as? Bool) == true || specific["encrypt"] != nil {
            throw DiskImageError("it is encrypted; Quiver hands qemu no keys")
        }
        guard size > 0 else { throw DiskImageError("its virtual size is 0") }
        if format == "raw" {
            guard size % 512 == 0 else { throw DiskImageError("it is \(size) bytes, not a whole number of 512-byte sectors, so not a raw disk") }
            guard hasDiskSignature(fd) else {
                throw DiskImageError("qemu-img reads it as raw, but it holds no partition table or file system: it is not a disk image")
            }
        }
        return ImageInfo(format: format, virtualSize: size)
    }

    /// A partition table (MBR boot signature, GPT header) or a file system superblock (ext2/3/4,
    /// XFS, Btrfs, ISO 9660, SquashFS, FAT) at its usual place.
    static func hasDiskSignature(_ fd: Int32) -> Bool {
        var head = [UInt8](repeating: 0, count: 72 * 1024)
        let n = pread(fd, &head, head.count, 0)
        guard n >= 512 else { return false }
        func at(_ offset: Int, _ bytes: [UInt8]) -> Bool { offset + bytes.count <= n && Array(head[offset..<offset + bytes.count]) == bytes }
        return at(510, [0x55, 0xAA])                       // MBR (or a FAT boot sector)
            || at(512, Array("EFI PART".utf8))              // GPT
            || at(1024 + 56, [0x53, 0xEF])                  // ext2/3/4
            || at(0, Array("XFSB".utf8))
            || at(65536 + 64, Array("_BHRfS_M".utf8))       // Btrfs
            || at(32769, Array("CD001".utf8))               // ISO 9660
            || at(0, Array("hsqs".utf8))                    // SquashFS
    }
}

public struct DiskImageError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The file could not be opened at all (as against: it is not an image Quiver boots).
    public var opening = false
    public init(_ d: String, opening: Bool = false) {
        description = d
        self.opening = opening
    }
}
