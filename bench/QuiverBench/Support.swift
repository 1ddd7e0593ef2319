import Foundation
import QuiverNetlink

/// Seconds taken by `body`, on the monotonic clock.
func measure(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Runs a command with posix_spawn (no Foundation.Process: it costs ~50 ms a spawn here, which
/// would flatter Quiver) and waits; `stdin` is fed through a pipe. Fails loudly when it fails.
func runCommand(_ args: [String], stdin: String? = nil) throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    var fds: [Int32] = [-1, -1]
    if stdin != nil {
        guard pipe(&fds) == 0 else { throw BenchError("pipe failed") }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addclose(&actions, fds[1])
    }
    var cargs = args.map { strdup($0) } + [nil]
    defer { for a in cargs { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, args[0], &actions, nil, &cargs, environ)
    guard rc == 0 else { throw BenchError("spawn \(args[0]): errno \(rc)") }
    if let stdin {
        close(fds[0])
        let data = Array(stdin.utf8)
        var off = 0
        while off < data.count {
            let n = data[off...].withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            off += n
        }
        close(fds[1])
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else {
        throw BenchError("`\(args.prefix(6).joined(separator: " "))…` exited with status \(status)")
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A namespace for one measurement, deleted afterwards (and waited for, so its devices are gone).
func withBenchNamespace<T>(_ body: (NetworkNamespace) throws -> T) throws -> T {
    let name = "qbench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let ns = try NetworkNamespace.create(named: name)
    defer { try? NetworkNamespace.delete(named: name) }
    return try body(ns)
}

func ms(_ s: Double) -> String { String(format: "%.1f", s * 1000) }
func ratio(_ a: Double, _ b: Double) -> String { String(format: "%.1fx", a / b) }

func printTable(_ header: [String], _ rows: [[String]]) {
    var w = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { w[i] = max(w[i], c.count) } }
    func line(_ r: [String]) -> String {
        r.enumerated().map { i, c in i == 0 ? c.padding(toLength: w[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: w[i] - c.count) + c }
            .joined(separator: "  ")
    }
    print(line(header))
    for r in rows { print(line(r)) }
}
