import CQuiverSystem
import Foundation
import Glibc

/// Starts a program with exactly the descriptors it is given: the child gets 0–2 and
/// `descriptors` at 3, 4, 5, … in order — and nothing else, whatever this process has open and
/// whether or not it was opened close-on-exec (libraries are not always careful). No shell is
/// involved: `argv` goes to the program word for word.
public enum Spawn {
    /// What a finished program left: its exit status (128 + N for signal N), standard error and,
    /// when asked for, standard output.
    public struct Outcome: Sendable {
        public var status: Int32
        public var stderr: String
        public var stdout: Data
    }

    /// Runs `argv` and waits for it (qemu with `-daemonize` returns once the guest is started).
    /// Returns the exit status and what it wrote to standard error.
    public static func run(_ argv: [String], descriptors: [Int32]) throws(SpawnError) -> (status: Int32, stderr: String) {
        let o = try run(argv, descriptors: descriptors, captureOutput: false)
        return (o.status, o.stderr)
    }

    /// Runs `argv` and waits for it; with `captureOutput`, its standard output is kept (at most
    /// `limit` bytes; more is read and dropped, so the program never blocks on a full pipe).
    /// `environment`: exactly the child's environment (nil: this process's). `input`: what the
    /// child reads on standard input (nil: /dev/null) — written while its output is read, so a
    /// child that writes before it has read everything cannot deadlock, and one that exits
    /// without reading costs no SIGPIPE (the input is a socket, written with MSG_NOSIGNAL).
    public static func run(_ argv: [String], descriptors: [Int32], captureOutput: Bool, limit: Int = 4 << 20,
                           environment: [String: String]? = nil, input: [UInt8]? = nil) throws(SpawnError) -> Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var errPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], inPair: [Int32] = [-1, -1]
        func closeAll() { for fd in errPipe + outPipe + inPair where fd >= 0 { close(fd) } }
        guard pipe(&errPipe) == 0 else { throw SpawnError(argv[0], "pipe", errno) }
        if captureOutput, pipe(&outPipe) != 0 {
            let e = errno
            closeAll()
            throw SpawnError(argv[0], "pipe", e)
        }
        if input != nil, socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &inPair) != 0 {
            let e = errno
            closeAll()
            throw SpawnError(argv[0], "socketpair", e)
        }
        // Close-on-exec on every end: the child gets its ends only as 0, 1 and 2 (dup2).
        for fd in errPipe + outPipe + inPair where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        if input != nil { posix_spawn_file_actions_adddup2(&actions, inPair[1], 0) } else { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        if captureOutput { posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1) } else { posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0) }
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let rcClose = place(descriptors, above: (errPipe + outPipe + inPair).max()!, in: &actions)
        guard rcClose == 0 else {
            closeAll()
            throw SpawnError(argv[0], "posix_spawn_file_actions_addclosefrom_np", rcClose)
        }
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for c in cargs { free(c) } }
        var envp = environment.map { $0.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for c in envp ?? [] { free(c) } }
        var pid: pid_t = 0
        let rc = envp == nil ? posix_spawnp(&pid, argv[0], &actions, nil, &cargs, environ)
            : posix_spawnp(&pid, argv[0], &actions, nil, &cargs, &envp!)
        close(errPipe[1])
        if captureOutput { close(outPipe[1]) }
        if input != nil { close(inPair[1]) }
        guard rc == 0 else {
            close(errPipe[0])
            if captureOutput { close(outPipe[0]) }
            if input != nil { close(inPair[0]) }
            throw SpawnError(argv[0], "posix_spawn", rc)
        }
        // The pipes are drained together, and the input written between reads, so none can fill up.
        var err = Data(), out = Data()
        var open = [errPipe[0]] + (captureOutput ? [outPipe[0]] : [])
        let toWrite = input ?? []
        var writer: Int32 = input == nil ? -1 : inPair[0], written = 0
        if writer >= 0 && toWrite.isEmpty { close(writer); writer = -1 }
        // Non-blocking: a send blocked on a full socket while the child waits for its output to
        // be read would deadlock both.
        if writer >= 0 { _ = fcntl(writer, F_SETFL, fcntl(writer, F_GETFL) | O_NONBLOCK) }
        var buf = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty || writer >= 0 {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if writer >= 0 { fds.append(pollfd(fd: writer, events: Int16(POLLOUT), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), -1) < 0 { if errno == EINTR { continue }; break }
            for p in fds where p.revents != 0 {
                if p.fd == writer {
                    let n = toWrite[written...].withUnsafeBytes { send(writer, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                    if n > 0 { written += n }
                    if n < 0 || written == toWrite.count { close(writer); writer = -1 }
                    continue
                }
                let n = read(p.fd, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    close(p.fd)
                    open.removeAll { $0 == p.fd }
                } else if p.fd == errPipe[0] {
                    if err.count < 1 << 16 { err.append(contentsOf: buf[0..<n]) }
                } else if out.count < limit {
                    out.append(contentsOf: buf[0..<min(n, limit - out.count)])
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Outcome(status: exit, stderr: String(decoding: err, as: UTF8.self), stdout: out)
    }
}

extension Spawn {
    /// Starts `argv` in a session of its own and does not wait for it: its standard output and
    /// error go to `output`, its standard input is /dev/null, `descriptors` are 3, 4, … Returns
    /// its pid; the caller reaps it (``reap(_:)``) if it is still this process's child.
    public static func start(_ argv: [String], descriptors: [Int32], output: Int32) throws(SpawnError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        posix_spawn_file_actions_adddup2(&actions, output, 2)
        let rcClose = place(descriptors, above: output, in: &actions)
        guard rcClose == 0 else { throw SpawnError(argv[0], "posix_spawn_file_actions_addclosefrom_np", rcClose) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(quiver_posix_spawn_setsid()))
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for c in cargs { free(c) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, &attr, &cargs, environ)
        guard rc == 0 else { throw SpawnError(argv[0], "posix_spawn", rc) }
        return pid
    }

    /// Collects `pid`'s exit status if it is a child of this process that has ended (no zombie
    /// is left behind); does nothing otherwise.
    public static func reap(_ pid: pid_t) {
        var status: Int32 = 0
        _ = waitpid(pid, &status, WNOHANG)
    }

    /// Puts `descriptors` at 3, 4, … in the child and closes everything above. Two steps, so no
    /// source is overwritten before it is copied: every source to a number above all of them
    /// (and above `highest`), then down to 3, 4, …. Returns 0 or an errno.
    static func place(_ descriptors: [Int32], above highest: Int32, in actions: inout posix_spawn_file_actions_t) -> Int32 {
        let base = max(highest, descriptors.max() ?? 0) + 1
        for (i, fd) in descriptors.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, base + Int32(i)) }
        for i in descriptors.indices { posix_spawn_file_actions_adddup2(&actions, base + Int32(i), 3 + Int32(i)) }
        return quiver_spawn_addclosefrom(&actions, 3 + Int32(descriptors.count))
    }
}

/// A program that could not be started.
public struct SpawnError: Error, Sendable, CustomStringConvertible {
    public var program: String
    public var call: String
    public var errno: Int32

    init(_ program: String, _ call: String, _ errno: Int32) {
        self.program = program
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) for \(program): \(String(cString: strerror(errno)))" }
}
