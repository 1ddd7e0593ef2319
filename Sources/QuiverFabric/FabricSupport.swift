import Foundation
import QuiverTopology

/// Work running on a thread of its own (a ruleset install during an apply, a TCP source during a
/// measurement); `wait` returns its result, and the same result again on later calls.
final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?
    private var finished = false

    init(_ body: @escaping @Sendable () throws -> T) {
        Thread { [self] in
            result = Result { try body() }
            done.signal()
        }.start()
    }

    func wait() -> Result<T, Error> {
        if !finished {
            done.wait()
            finished = true
        }
        return result!
    }
}

final class FileDescriptorBox {
    let fd: Int32
    init(_ fd: Int32) { self.fd = fd }
    func close() { Glibc.close(fd) }
}

/// How many of a batch of namespaces exist so far, for a thread that waits on another making them.
final class MadeSoFar: @unchecked Sendable {
    private let condition = NSCondition()
    private var count = 0
    private var finished = false

    func set(_ n: Int) {
        condition.lock()
        count = n
        condition.broadcast()
        condition.unlock()
    }

    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until more than `index` are made; returns how many are. Throws `CancellationError`
    /// when the maker stopped short (its own error is what the caller reports).
    func wait(forMoreThan index: Int) throws -> Int {
        condition.lock()
        defer { condition.unlock() }
        while count <= index && !finished { condition.wait() }
        guard count > index else { throw CancellationError() }
        return count
    }
}
