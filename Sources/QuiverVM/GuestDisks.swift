import Foundation
import Glibc
import QuiverKernel
import QuiverNetlink
import SystemPackage

/// The disks and firmware files of a guest that boots an image, ready to hand to qemu: the base
/// image (read-only), its overlay, the NoCloud seed and OVMF's files, each an open descriptor.
struct PreparedDisks {
    var base: (FileDescriptor, ImageInfo)?
    /// Read-write, then read-only (qemu picks the one whose access matches each open).
    var overlay: [FileDescriptor] = []
    var seed: FileDescriptor?
    var ovmfCode: FileDescriptor?
    var efiVars: [FileDescriptor] = []
    var notices: [String] = []

    var all: [FileDescriptor] { (base.map { [$0.0] } ?? []) + overlay + (seed.map { [$0] } ?? []) + (ovmfCode.map { [$0] } ?? []) + efiVars }
    func close() { for f in all { try? f.close() } }
}

extension VMLauncher {
    /// The state directory of a guest run from `directory`: `/var/lib/quiver/vms/T/H` for a
    /// topology's guest, else `directory.state` beside it.
    static func stateDirectory(for directory: String) -> String { GuestState.path(forRunDirectory: directory) ?? directory + ".state" }

    /// Opens the base image (``GuestFile``: by the file owner's rights, no link followed) and
    /// asks qemu-img what it is, on that descriptor; makes or keeps the overlay over it; writes
    /// the seed; copies OVMF's variable store once. Everything is opened here, in Quiver's
    /// state directory, and handed to qemu open.
    static func prepareDisks(_ spec: VMSpec, stateDirectory: String) throws -> PreparedDisks {
        var p = PreparedDisks()
        guard spec.image != nil || spec.seed != nil || spec.firmware == .uefi else { return p }
        var done = false
        defer { if !done { p.close() } }
        guard let state = try GuestState.open(stateDirectory, create: true) else { throw VMError("\(stateDirectory) cannot be made") }
        if let image = spec.image {
            let base = try GuestFile.open(image.path, .read, owner: spec.filesOwner)
            let info: ImageInfo
            do { info = try DiskImage.inspect(base.rawValue) } catch {
                try? base.close()
                throw VMError("image \(image.path): \(error.description)")
            }
            p.base = (base, info)
            if let n = try GuestOverlay.prepare(base: base, path: image.path, info: info, size: image.size, in: state) { p.notices.append(n) }
            for writable in [true, false] {
                guard let f = try state.openExisting(GuestState.Entry.overlay.rawValue, writable: writable) else { throw VMError("the overlay of \(spec.name) vanished") }
                p.overlay.append(f)
            }
        }
        if let seed = spec.seed {
            let userFile = try seed.userData.map { try readUserData($0, owner: spec.filesOwner) }
            try state.write(GuestState.Entry.seed.rawValue, try CloudSeed(spec, seed: seed, userFile: userFile).image())
            p.seed = try state.openExisting(GuestState.Entry.seed.rawValue, writable: false)
        }
        if spec.firmware == .uefi {
            guard let ovmf = OVMF.installed else { throw VMError("firmware uefi needs OVMF, which is not installed (apt install ovmf)") }
            p.ovmfCode = try FileDescriptor.open(ovmf.code, .readOnly, options: [.closeOnExec, .noFollow])
            if state.kind(of: GuestState.Entry.efiVars.rawValue) == nil {
                try state.write(GuestState.Entry.efiVars.rawValue, try Data(contentsOf: URL(fileURLWithPath: ovmf.vars)))
            }
            for writable in [true, false] {
                guard let f = try state.openExisting(GuestState.Entry.efiVars.rawValue, writable: writable) else { throw VMError("the UEFI variables of \(spec.name) vanished") }
                p.efiVars.append(f)
            }
        }
        done = true
        return p
    }

    /// The `user-data` file's content (at most 1 MiB), read through a descriptor opened by the
    /// file owner's rights.
    static func readUserData(_ path: String, owner: UInt32?) throws -> Data {
        let f = try GuestFile.open(path, .read, owner: owner)
        defer { try? f.close() }
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try buf.withUnsafeMutableBytes { try f.read(into: $0) }
            if n == 0 { break }
            data.append(contentsOf: buf[0..<n])
            guard data.count <= 1 << 20 else { throw VMError("user-data \(path) is larger than 1 MiB") }
        }
        return data
    }
}
