import CNetlink
import Foundation
import QuiverNetlink
import SystemPackage

/// Starts a program with exactly the descriptors it is given: the child gets 0–2 and
/// `descriptors` at 3, 4, 5, … in order — and nothing else, whatever this process has open and
/// whether or not it was opened close-on-exec (libraries are not always careful).
public enum Spawn {
    /// Runs `argv` and waits for it (qemu with `-daemonize` returns once the guest is started).
    /// Returns the exit status and what it wrote to standard error.
    public static func run(_ argv: [String], descriptors: [Int32]) throws -> (status: Int32, stderr: String) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var errPipe: [Int32] = [-1, -1]
        guard pipe(&errPipe) == 0 else { throw SystemCallError("pipe", errno: Errno(rawValue: errno)) }
        // Close-on-exec on both ends: the child gets the write end only as its stderr (dup2).
        for fd in errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        // Two steps, so no source is overwritten before it is copied: every source to a number
        // above all of them, then down to 3, 4, …; then close everything above the last one.
        let base = max(errPipe.max()!, descriptors.max() ?? 0) + 1
        for (i, fd) in descriptors.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, base + Int32(i)) }
        for i in descriptors.indices { posix_spawn_file_actions_adddup2(&actions, base + Int32(i), 3 + Int32(i)) }
        guard quiver_spawn_addclosefrom(&actions, 3 + Int32(descriptors.count)) == 0 else {
            throw SystemCallError("posix_spawn_file_actions_addclosefrom_np", errno: Errno(rawValue: errno))
        }
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for c in cargs { free(c) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, nil, &cargs, environ)
        close(errPipe[1])
        guard rc == 0 else {
            close(errPipe[0])
            throw SystemCallError("posix_spawn", argv[0], errno: Errno(rawValue: rc))
        }
        var err = Data()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(errPipe[0], &buf, buf.count)
            if n > 0 { err.append(contentsOf: buf[0..<n]) } else if n < 0 && errno == EINTR { continue } else { break }
        }
        close(errPipe[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exit, String(decoding: err, as: UTF8.self))
    }
}
