import Foundation
import QuiverKernel
import QuiverNetlink

/// The namespaces an apply makes, made on a thread of their own while the switches and VNICs
/// are made on the apply's: each VNIC waits only for its own namespace. A third thread opens a
/// socket in each new namespace as it appears and brings its `lo` up with the topology's tag:
/// round trips that fit between the other two threads' kernel work (BENCHMARKS.md, bench/apply).
final class NamespacePipeline: @unchecked Sendable {
    /// In the order they are made.
    let names: [String]
    /// Each name's place in `names`.
    let positions: [String: Int]
    private let condition = NSCondition()
    private var made = 0
    private var stopped = false
    private var creating: Background<Void>?
    private var opening: Background<[NetlinkHandle]>?

    /// Starts making the namespaces, each with the owner tag its `lo` gets; `madeSoFar` is told
    /// how many exist as they appear (the undo removes those).
    init(_ namespaces: [(name: String, tag: String)], madeSoFar: @escaping @Sendable (Int) -> Void) {
        let names = namespaces.map(\.name)
        self.names = names
        positions = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        creating = Background { [self] in
            defer { stop() }
            try NetworkNamespace.create(named: names) { n in
                madeSoFar(n)
                self.set(n)
            }
        }
        opening = Background { [self] in
            var opened: [NetlinkHandle] = []
            while opened.count < names.count {
                let ready = try waitForCount(moreThan: opened.count)
                let batch = Array(namespaces[opened.count..<ready])
                for (n, h) in zip(batch, try NetlinkHandle.open(namespaces: batch.map { NetworkNamespace.named($0.name) })) {
                    try h.perform([LinkRequest.change("lo", LinkSettings(up: true, alias: n.tag))])
                    opened.append(h)
                }
            }
            return opened
        }
    }

    /// Waits until the namespace at `position` exists; returns how many do. Throws the error that
    /// stopped the making short, if it did.
    func wait(forMoreThan position: Int) throws -> Int {
        do { return try waitForCount(moreThan: position) } catch {
            try creating?.wait().get()
            throw error
        }
    }

    /// Waits for both threads; returns each namespace with its socket, in order.
    func finish() throws -> [(String, NetlinkHandle)] {
        let made = creating?.wait()
        let opened = opening?.wait()
        try made?.get()
        return Array(zip(names, try opened?.get() ?? []))
    }

    private func set(_ n: Int) {
        condition.lock()
        made = n
        condition.broadcast()
        condition.unlock()
    }

    private func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Throws `CancellationError` when the making stopped short.
    private func waitForCount(moreThan index: Int) throws -> Int {
        condition.lock()
        defer { condition.unlock() }
        while made <= index && !stopped { condition.wait() }
        guard made > index else { throw CancellationError() }
        return made
    }
}
