import Foundation

/// Results written from concurrent workers. Workers fewer than the slots share them as a queue
/// (``claim()``).
final class ResultSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Result<T, Error>?]
    private var claimed = 0
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); values[i] = r; lock.unlock() }
    /// The next slot no worker has taken, or nil when all are taken.
    func claim() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard claimed < values.count else { return nil }
        claimed += 1
        return claimed - 1
    }
    func get(_ i: Int) throws -> T { lock.lock(); defer { lock.unlock() }; return try values[i]!.get() }
}
