import Foundation

/// Results written from concurrent workers.
final class ResultSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Result<T, Error>?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); values[i] = r; lock.unlock() }
    func get(_ i: Int) throws -> T { lock.lock(); defer { lock.unlock() }; return try values[i]!.get() }
}
