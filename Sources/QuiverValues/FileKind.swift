import Glibc

/// What kind of file a mode says, for messages: "a directory", "a FIFO", …
public enum FileKind {
    public static func name(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "mode \(String(mode, radix: 8))"
        }
    }
}
