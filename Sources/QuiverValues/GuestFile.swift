import Foundation
import Glibc
import SystemPackage

/// A file a guest boots from or writes to (`kernel`, `initrd`, `disk`): named in a topology file,
/// opened by Quiver and handed to qemu as a descriptor, so qemu never resolves the path itself.
///
/// It must be a regular file reached without a symbolic link in its last component (Quiver never
/// follows a link it did not make). When the topology file belongs to someone other than root,
/// that user must be able to read it (and, for a disk, write it) by its permission bits: a file
/// from a user cannot hand a guest `/etc/shadow` or a disk it has no right to. The check is made
/// on the opened descriptor, so swapping the path afterwards changes nothing.
public enum GuestFile {
    public enum Access: Sendable { case read, readWrite }

    /// Why `path` cannot be used, or nil (validation, before anything changes).
    public static func problem(_ path: String, _ access: Access, owner: UInt32?) -> String? {
        do {
            try open(path, access, owner: owner).close()
            return nil
        } catch let e as GuestFileError {
            return e.problem
        } catch {
            return "it cannot be opened (\(error))"
        }
    }

    /// Opens `path` for qemu (close-on-exec; the launcher hands it over by number). Nothing that is
    /// not a regular file is opened at all (``RegularFile``).
    public static func open(_ path: String, _ access: Access, owner: UInt32?) throws -> FileDescriptor {
        let fd: Int32, st: stat
        switch RegularFile.open(path, access == .read ? O_RDONLY : O_RDWR, followLinks: false) {
        case .success(let (f, s)): (fd, st) = (f, s)
        case .failure(.missing): throw GuestFileError(path: path, problem: "it does not exist")
        case .failure(.link(let target)): throw GuestFileError(path: path, problem: "it is a symbolic link (to \(target)); name the file itself")
        case .failure(.notRegular(let mode)): throw GuestFileError(path: path, problem: "it is \(FileKind.name(mode))")
        case .failure(.failed(let e)): throw GuestFileError(path: path, problem: "it cannot be opened (\(String(cString: strerror(e))))")
        }
        let file = FileDescriptor(rawValue: fd)
        if let owner, owner != 0, !mayAccess(uid: owner, st, write: access == .readWrite) {
            try? file.close()
            throw GuestFileError(path: path, problem: "uid \(owner), who owns the topology file, cannot \(access == .read ? "read it" : "read and write it") "
                                 + "(mode \(String(st.st_mode & 0o777, radix: 8)), owner uid \(st.st_uid))")
        }
        return file
    }

    /// Whether `uid` may read (and write) a file with this status, by its permission bits and
    /// `uid`'s groups.
    static func mayAccess(uid: UInt32, _ st: stat, write: Bool) -> Bool {
        let need: mode_t = write ? 0o6 : 0o4
        let mode = st.st_mode
        if st.st_uid == uid { return (mode >> 6) & need == need }
        if groups(of: uid).contains(st.st_gid) { return (mode >> 3) & need == need }
        return mode & need == need
    }

    static func groups(of uid: UInt32) -> Set<UInt32> {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &pw, &buf, buf.count, &result) == 0, result != nil, let name = pw.pw_name else { return [] }
        var count: Int32 = 256
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, pw.pw_gid, &list, &count) < 0 {
            list = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, pw.pw_gid, &list, &count) >= 0 else { return [pw.pw_gid] }
        }
        return Set(list.prefix(Int(count)))
    }
}

/// A guest file that cannot be used.
public struct GuestFileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var problem: String
    public var description: String { "\(path): \(problem)" }
}
