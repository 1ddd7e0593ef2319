import CQuiverSystem
import Glibc

/// Opening a file a user named, when it must be a regular file: it is first opened with `O_PATH`
/// (which opens nothing — not a device, not a FIFO) and examined, and only a regular file is then
/// opened for real, through `/proc/self/fd`, which reopens that very inode. Opening a device node
/// can do something by itself (a watchdog starts counting down when it is opened), so nothing
/// that is not a regular file is ever opened.
public enum RegularFile {
    /// The descriptor (close-on-exec; the caller owns it) and the file's status, or why not:
    /// `.missing`, `.link(target)` (a symbolic link in the last component, when `followLinks` is
    /// false), `.notRegular(mode)`, or `.failed(errno)`.
    public enum Refusal: Error, Sendable, Equatable {
        case missing
        case link(String)
        case notRegular(mode_t)
        case failed(Int32)
    }

    public static func open(_ path: String, _ flags: Int32, followLinks: Bool) -> Result<(Int32, stat), Refusal> {
        let probe = Glibc.open(path, quiver_o_path() | O_CLOEXEC | (followLinks ? 0 : O_NOFOLLOW))
        if probe < 0 { return .failure(errno == ENOENT ? .missing : .failed(errno)) }
        defer { Glibc.close(probe) }
        var st = stat()
        guard fstat(probe, &st) == 0 else { return .failure(.failed(errno)) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlink(path, &buf, buf.count - 1)
            return .failure(.link(n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"))
        default: return .failure(.notRegular(st.st_mode))
        }
        let fd = Glibc.open("/proc/self/fd/\(probe)", flags | O_CLOEXEC | O_NOCTTY)
        if fd < 0 { return .failure(.failed(errno)) }
        var again = stat()
        guard fstat(fd, &again) == 0, again.st_ino == st.st_ino, again.st_dev == st.st_dev else {
            Glibc.close(fd)
            return .failure(.failed(ESTALE))
        }
        return .success((fd, again))
    }
}
