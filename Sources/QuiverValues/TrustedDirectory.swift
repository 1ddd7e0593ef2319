import Foundation
import Glibc
import SystemPackage

/// A directory Quiver keeps state in (`/run/quiver/...`), held open and checked: every component
/// of its path was opened without following a symbolic link, is a real directory, is owned by the
/// user Quiver runs as (its ancestors may be root's), and is writable by no one else. Files in it
/// are reached only relative to that descriptor, never by following a link: a link, a FIFO or a
/// file someone else planted is refused with an error naming it and saying what to do.
///
/// Missing directories are made with mode 0700. Files are written to a new temporary file
/// (`O_EXCL`, mode 0600) and renamed into place, so a reader sees the old file or the new one.
public final class TrustedDirectory: @unchecked Sendable {
    public let path: String
    public let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    /// Opens an absolute `path` component by component from `/`. Directories from `below` on
    /// (default: all of them) must be owned by the user Quiver runs as; those above may also be
    /// root's. With `create`, missing ones are made (0700); without it, nil when one is missing.
    public static func open(_ path: String, create: Bool) throws(StateDirectoryError) -> TrustedDirectory? {
        guard path.hasPrefix("/") else { throw StateDirectoryError(path, "is not an absolute path", "") }
        var current = TrustedDirectory(path: "/", fd: Glibc.open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC))
        guard current.fd >= 0 else { throw StateDirectoryError("/", "cannot be opened (\(String(cString: strerror(errno))))", "") }
        try current.check(ownedByRootAllowed: true)
        for component in path.split(separator: "/").map(String.init) {
            guard let next = try current.subdirectory(component, create: create) else { return nil }
            current = next
        }
        return current
    }

    /// The subdirectory `name` (one path component), checked as above; made (0700) when missing
    /// and `create`, else nil when missing.
    public func subdirectory(_ name: String, create: Bool) throws(StateDirectoryError) -> TrustedDirectory? {
        try TrustedDirectory.checkComponent(name, in: self)
        let child = childPath(name)
        if create, mkdirat(fd, name, 0o700) != 0, errno != EEXIST {
            throw StateDirectoryError(child, "cannot be created (\(String(cString: strerror(errno))))", "check that \(path) is writable")
        }
        let sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if sub < 0 {
            let e = errno
            if e == ENOENT { return nil }
            throw StateDirectoryError(child, describeRefusal(name, errno: e), remedy(child))
        }
        let dir = TrustedDirectory(path: child, fd: sub)
        // Ancestors of Quiver's own directories (`/`, `/run`) may be root's when Quiver runs as
        // another user; what it keeps itself must be its own.
        try dir.check(ownedByRootAllowed: geteuid() != 0 && !path.hasPrefix(TrustedDirectory.runRoot) && child != TrustedDirectory.runRoot)
        return dir
    }

    /// `/run/quiver`: where every piece of Quiver's state lives.
    public static let runRoot = "/run/quiver"

    /// Opens (or makes) `/run/quiver/A/B/...`. Each component must be one path component
    /// (callers pass validated names).
    public static func run(_ components: [String], create: Bool) throws(StateDirectoryError) -> TrustedDirectory? {
        guard var dir = try open(runRoot, create: create) else { return nil }
        for c in components {
            guard let next = try dir.subdirectory(c, create: create) else { return nil }
            dir = next
        }
        return dir
    }

    public func childPath(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    // MARK: Files

    /// The regular file `name`, at most `limit` bytes, or nil when there is none. A link, a
    /// non-regular file, one owned by someone else or one above the limit is refused.
    public func read(_ name: String, limit: Int = 4 << 20) throws(StateDirectoryError) -> Data? {
        guard let f = try openForReading(name) else { return nil }
        defer { Glibc.close(f) }
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(f, &buf, buf.count)
            if n < 0 { if errno == EINTR { continue }; throw StateDirectoryError(childPath(name), "cannot be read (\(String(cString: strerror(errno))))", "") }
            if n == 0 { break }
            data.append(contentsOf: buf[0..<n])
            if data.count > limit { throw StateDirectoryError(childPath(name), "is larger than \(limit) bytes", "remove it; Quiver writes it again") }
        }
        return data
    }

    /// Writes `data` to `name` atomically: a new temporary file (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode
    /// 0600) in this directory, renamed over `name`.
    public func write(_ name: String, _ data: Data) throws(StateDirectoryError) {
        try TrustedDirectory.checkComponent(name, in: self)
        var tmp = ""
        var f: Int32 = -1
        for _ in 0..<16 {
            tmp = ".\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).tmp"
            f = openat(fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if f >= 0 || errno != EEXIST { break }
        }
        guard f >= 0 else { throw StateDirectoryError(childPath(name), "cannot be written (\(String(cString: strerror(errno))))", "check that \(path) is writable") }
        var ok = true
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(f, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; ok = false; return }
                off += n
            }
        }
        let e = errno
        Glibc.close(f)
        guard ok, renameat(fd, tmp, fd, name) == 0 else {
            let err = ok ? errno : e
            unlinkat(fd, tmp, 0)
            throw StateDirectoryError(childPath(name), "cannot be written (\(String(cString: strerror(err))))", "check that \(path) is writable")
        }
    }

    /// A new, empty file `name` (0600; an earlier one is truncated), open for writing; never
    /// through a link.
    public func create(_ name: String) throws(StateDirectoryError) -> FileDescriptor {
        try TrustedDirectory.checkComponent(name, in: self)
        let f = openat(fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard f >= 0 else { throw StateDirectoryError(childPath(name), describeRefusal(name, errno: errno), remedy(childPath(name))) }
        do { try checkFile(f, name) } catch {
            Glibc.close(f)
            throw error
        }
        return FileDescriptor(rawValue: f)
    }

    /// Opens the existing regular file `name` (no link followed, owner checked) for reading, or
    /// reading and writing; nil when there is none.
    public func openExisting(_ name: String, writable: Bool) throws(StateDirectoryError) -> FileDescriptor? {
        try openChecked(name, writable ? O_RDWR : O_RDONLY).map { FileDescriptor(rawValue: $0) }
    }

    /// `openat` of `name` with `flags`, never through a link and never blocking on a FIFO (the
    /// check then refuses anything but a regular file of this user's); nil when there is none.
    private func openChecked(_ name: String, _ flags: Int32) throws(StateDirectoryError) -> Int32? {
        try TrustedDirectory.checkComponent(name, in: self)
        let f = openat(fd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        if f < 0 {
            let e = errno
            if e == ENOENT { return nil }
            throw StateDirectoryError(childPath(name), describeRefusal(name, errno: e), remedy(childPath(name)))
        }
        do { try checkFile(f, name) } catch {
            Glibc.close(f)
            throw error
        }
        return f
    }

    /// Renames `from` to `to` within this directory (replacing `to`).
    public func rename(_ from: String, to: String) throws(StateDirectoryError) {
        try TrustedDirectory.checkComponent(from, in: self)
        try TrustedDirectory.checkComponent(to, in: self)
        guard renameat(fd, from, fd, to) == 0 else {
            throw StateDirectoryError(childPath(to), "cannot be renamed into place (\(String(cString: strerror(errno))))", "check that \(path) is writable")
        }
    }

    /// Removes the entry `name` (a file, a socket, or a link — never what a link points to).
    /// Returns false when there was none.
    @discardableResult
    public func remove(_ name: String) throws(StateDirectoryError) -> Bool {
        try TrustedDirectory.checkComponent(name, in: self)
        if unlinkat(fd, name, 0) == 0 { return true }
        if errno == ENOENT { return false }
        throw StateDirectoryError(childPath(name), "cannot be removed (\(String(cString: strerror(errno))))", "")
    }

    /// Removes the empty subdirectory `name`; false when there was none.
    @discardableResult
    public func removeDirectory(_ name: String) throws(StateDirectoryError) -> Bool {
        try TrustedDirectory.checkComponent(name, in: self)
        if unlinkat(fd, name, AT_REMOVEDIR) == 0 { return true }
        if errno == ENOENT { return false }
        let what = errno == ENOTEMPTY ? "is not empty; Quiver removes only what it made, and left the rest"
            : "cannot be removed (\(String(cString: strerror(errno))))"
        throw StateDirectoryError(childPath(name), what, errno == ENOTEMPTY ? "look at what is in it and remove it yourself" : "")
    }

    /// Names in the directory (without `.` and `..`), sorted.
    public func entries() throws(StateDirectoryError) -> [String] {
        let d = dup(fd)
        guard d >= 0, let dir = fdopendir(d) else {
            throw StateDirectoryError(path, "cannot be listed (\(String(cString: strerror(errno))))", "")
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// What `name` is, without following a link: `S_IFREG`, `S_IFSOCK`, `S_IFLNK`, … (the
    /// `st_mode & S_IFMT` bits), with its owner; nil when there is no such entry.
    public func kind(of name: String) -> (type: mode_t, uid: uid_t)? {
        var st = stat()
        guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return (st.st_mode & S_IFMT, st.st_uid)
    }

    /// Opens the regular file `name` for reading (no link followed, owner checked); nil when there
    /// is none. The caller owns the descriptor.
    public func openForReading(_ name: String) throws(StateDirectoryError) -> Int32? {
        try openChecked(name, O_RDONLY)
    }

    /// Opens (creating, mode 0600) the regular file `name` for reading and writing, for a lock;
    /// the caller owns the descriptor.
    public func openLockFile(_ name: String) throws(StateDirectoryError) -> Int32 {
        try TrustedDirectory.checkComponent(name, in: self)
        let f = openat(fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
        if f < 0 {
            throw StateDirectoryError(childPath(name), describeRefusal(name, errno: errno), remedy(childPath(name)))
        }
        do { try checkFile(f, name) } catch {
            Glibc.close(f)
            throw error
        }
        return f
    }

    // MARK: Checks

    private func check(ownedByRootAllowed: Bool) throws(StateDirectoryError) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StateDirectoryError(path, "cannot be examined (\(String(cString: strerror(errno))))", "") }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw StateDirectoryError(path, "is not a directory", remedy(path)) }
        if st.st_uid != geteuid() && !(ownedByRootAllowed && st.st_uid == 0) {
            throw StateDirectoryError(path, "is owned by uid \(st.st_uid), not by uid \(geteuid()) that Quiver runs as",
                                      st.st_uid == 0 ? "run quiver as root"
                                          : "Quiver keeps no state where someone else could change it; remove it (Quiver makes it again) or `chown \(geteuid()) \(path)`")
        }
        if st.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            throw StateDirectoryError(path, "is writable by group or others (mode \(String(st.st_mode & 0o7777, radix: 8)))",
                                      "`chmod go-w \(path)` (Quiver makes its own directories 0700)")
        }
    }

    private func checkFile(_ f: Int32, _ name: String) throws(StateDirectoryError) {
        var st = stat()
        guard fstat(f, &st) == 0 else { throw StateDirectoryError(childPath(name), "cannot be examined", "") }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw StateDirectoryError(childPath(name), "is not a regular file", "Quiver did not make it; remove it")
        }
        guard st.st_uid == geteuid() else {
            throw StateDirectoryError(childPath(name), "is owned by uid \(st.st_uid), not by uid \(geteuid()) that Quiver runs as",
                                      "Quiver did not make it; remove it")
        }
    }

    private func describeRefusal(_ name: String, errno e: Int32) -> String {
        if let k = kind(of: name), k.type == S_IFLNK {
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlinkat(fd, name, &buf, buf.count - 1)
            let target = n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            return "is a symbolic link (to \(InvalidValue.quoted(target))); Quiver never follows a link in its state directories"
        }
        if e == ENOTDIR { return "is not a directory" }
        return "cannot be opened (\(String(cString: strerror(e))))"
    }

    private func remedy(_ p: String) -> String { "Quiver did not make it: remove it, and Quiver makes its own" }

    static func checkComponent(_ name: String, in dir: TrustedDirectory) throws(StateDirectoryError) {
        if name.isEmpty || name == "." || name == ".." || name.contains("/") || name.utf8.contains(0) || name.utf8.count > 255 {
            throw StateDirectoryError(dir.childPath(name), "is not a single path component", "")
        }
    }
}

/// A state directory or file Quiver will not use, and why.
public struct StateDirectoryError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var problem: String
    public var remedy: String

    public init(_ path: String, _ problem: String, _ remedy: String) {
        self.path = path
        self.problem = problem
        self.remedy = remedy
    }

    public var description: String {
        "\(InvalidValue.quoted(path, limit: 200)) \(problem)" + (remedy.isEmpty ? "" : " — \(remedy)")
    }
}
