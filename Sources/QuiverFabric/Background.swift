import Foundation

/// Work running on a thread of its own (the rules beside the caps during an apply, a TCP source
/// during a measurement); `wait` returns its result, and the same result again on later calls.
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
