import CMnl
import CNetlink
import Foundation
import SystemPackage

/// A request and what to call it in errors.
public struct NetlinkRequest: Sendable {
    public var message: NetlinkMessage
    public var context: RequestContext

    public init(_ message: NetlinkMessage, _ context: RequestContext) {
        self.message = message
        self.context = context
    }
}

/// A netlink socket that owns its file descriptor (a libmnl `mnl_socket`, closed exactly once).
///
/// Every request goes through one receive path (`execute`): requests get monotonic sequence
/// numbers and `NLM_F_ACK`; replies are matched by sequence and port id; `NLMSG_ERROR` becomes a
/// ``NetlinkError`` carrying the kernel's extended-ACK text; multipart dumps are collected until
/// `NLMSG_DONE` and retried when the kernel marks them `NLM_F_DUMP_INTR`.
///
/// The socket belongs to the network namespace it was opened in, whatever thread uses it later.
/// It is safe to share between threads: requests are serialized by a lock.
public final class NetlinkSocket: @unchecked Sendable {
    public let netlinkProtocol: Int32
    public let portID: UInt32
    private var socket: OpaquePointer?
    private var nextSequence: UInt32
    private let lock = NSLock()

    /// Most requests in flight before their ACKs are read (keeps the receive queue bounded).
    public var maxInFlight = 512
    /// Largest single `sendmsg` of batched requests.
    public var maxSendBytes = 256 * 1024

    /// Opens and binds a socket in the calling thread's network namespace.
    /// Use ``NetworkNamespace/openSocket(protocol:)`` for another namespace.
    public init(protocol proto: Int32 = NETLINK_ROUTE) throws(SystemCallError) {
        guard let nl = mnl_socket_open2(proto, Int32(SOCK_CLOEXEC.rawValue)) else {
            throw SystemCallError("socket(AF_NETLINK)", errno: Errno(rawValue: Glibc.errno))
        }
        guard mnl_socket_bind(nl, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let e = Errno(rawValue: Glibc.errno)
            mnl_socket_close(nl)
            throw SystemCallError("bind(AF_NETLINK)", errno: e)
        }
        socket = nl
        netlinkProtocol = proto
        portID = mnl_socket_get_portid(nl)
        // Start from a time-derived value so replies to an earlier process are never mistaken
        // for ours; afterwards the sequence only increases.
        nextSequence = UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970 * 1000)) | 1

        var on: Int32 = 1
        // Errors carry the kernel's explanation; ACKs do not echo the whole request back.
        _ = mnl_socket_setsockopt(nl, Int32(NETLINK_EXT_ACK), &on, socklen_t(MemoryLayout<Int32>.size))
        _ = mnl_socket_setsockopt(nl, Int32(NETLINK_CAP_ACK), &on, socklen_t(MemoryLayout<Int32>.size))
        // Dumps honour the filters in their request headers (e.g. one clsact block).
        _ = mnl_socket_setsockopt(nl, Int32(NETLINK_GET_STRICT_CHK), &on, socklen_t(MemoryLayout<Int32>.size))
        // Room for many ACKs of a pipelined batch (FORCE works as root; plain is the fallback).
        var size: Int32 = 8 * 1024 * 1024
        let fd = mnl_socket_get_fd(nl)
        for (force, plain) in [(SO_RCVBUFFORCE, SO_RCVBUF), (SO_SNDBUFFORCE, SO_SNDBUF)] {
            if setsockopt(fd, SOL_SOCKET, force, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
                _ = setsockopt(fd, SOL_SOCKET, plain, &size, socklen_t(MemoryLayout<Int32>.size))
            }
        }
    }

    deinit {
        close()
    }

    /// Closes the socket. Idempotent.
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        if let nl = socket {
            mnl_socket_close(nl)
            socket = nil
        }
    }

    public var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return socket == nil
    }

    /// The raw file descriptor, for `poll` or diagnostics. Still owned by this socket.
    public var fileDescriptor: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return socket.map { mnl_socket_get_fd($0) }
    }

    // MARK: Requests

    /// Sends one request and returns the messages the kernel answered with before its ACK.
    @discardableResult
    public func request(_ message: NetlinkMessage, _ context: RequestContext) throws -> [ReceivedMessage] {
        try execute([NetlinkRequest(message, context)])[0].get()
    }

    /// Dumps (adds `NLM_F_DUMP`) and returns every message of the multipart answer.
    public func dump(_ message: NetlinkMessage, _ context: RequestContext) throws -> [ReceivedMessage] {
        var m = message
        m.flags |= UInt16(NLM_F_DUMP)
        return try request(m, context)
    }

    /// Sends many requests pipelined (several per `sendmsg`), then reads all their ACKs.
    /// The kernel handles them in order; one failing does not stop the others.
    /// Returns one result per request, in order.
    ///
    /// `acknowledgeEach: false` asks for an ACK only from the last request of each `sendmsg`
    /// (the kernel reports a failure whether asked or not, and handles the requests of one
    /// buffer in order, so that ACK means every earlier one succeeded unless it failed): for
    /// large batches whose replies the caller ignores, it spares the kernel building, and this
    /// socket reading, one message per request. Buffers holding a dump are acknowledged in full.
    public func execute(_ requests: [NetlinkRequest], acknowledgeEach: Bool = true) -> [Result<[ReceivedMessage], Error>] {
        lock.lock()
        defer { lock.unlock() }
        guard let nl = socket else {
            return requests.map { .failure(SystemCallError("send", $0.context.description, errno: .badFileDescriptor)) }
        }
        var results = [Result<[ReceivedMessage], Error>?](repeating: nil, count: requests.count)
        var start = 0
        while start < requests.count {
            var end = start
            var bytes = 0
            while end < requests.count, end - start < maxInFlight,
                  end == start || bytes + requests[end].message.length <= maxSendBytes {
                bytes += requests[end].message.length
                end += 1
            }
            runChunk(nl, requests, start..<end, acknowledgeEach: acknowledgeEach, into: &results)
            start = end
        }
        return results.map { $0! }
    }

    private func runChunk(_ nl: OpaquePointer, _ requests: [NetlinkRequest], _ range: Range<Int>, acknowledgeEach: Bool,
                          into results: inout [Result<[ReceivedMessage], Error>?]) {
        var pending = Array(range)
        // A dump that the kernel reports as interrupted is run again, a bounded number of times.
        for attempt in 0..<5 {
            let interrupted = exchange(nl, requests, pending, acknowledgeEach: acknowledgeEach, into: &results)
            if interrupted.isEmpty { return }
            pending = interrupted
            if attempt == 4 {
                for i in interrupted {
                    results[i] = .failure(NetlinkError(context: requests[i].context, errno: .resourceTemporarilyUnavailable,
                                                       hint: "dump kept changing under us (NLM_F_DUMP_INTR); try again"))
                }
            }
        }
    }

    /// Sends `indices` in one buffer and reads until each is answered. Returns the dumps that were
    /// interrupted (to be retried); everything else gets its result.
    private func exchange(_ nl: OpaquePointer, _ requests: [NetlinkRequest], _ indices: [Int], acknowledgeEach: Bool,
                          into results: inout [Result<[ReceivedMessage], Error>?]) -> [Int] {
        var bySequence: [UInt32: Int] = [:]
        var buffer: [UInt8] = []
        buffer.reserveCapacity(indices.reduce(0) { $0 + requests[$1].message.length })
        // Errors-only: just the last request is asked for an ACK, and only it is waited for.
        let quiet = !acknowledgeEach && indices.count > 1
            && !indices.contains { requests[$0].message.flags & UInt16(NLM_F_DUMP) == UInt16(NLM_F_DUMP) }
        let checkpoint = indices.last
        for i in indices {
            var m = requests[i].message
            m.sequence = nextSequence
            if !quiet || i == checkpoint { m.flags |= UInt16(NLM_F_ACK) }
            bySequence[nextSequence] = i
            nextSequence &+= 1
            buffer.append(contentsOf: m.bytes)
        }
        let sent = buffer.withUnsafeBytes { mnl_socket_sendto(nl, $0.baseAddress, $0.count) }
        if sent < 0 {
            let e = Errno(rawValue: Glibc.errno)
            for i in indices { results[i] = .failure(SystemCallError("sendmsg(netlink)", requests[i].context.description, errno: e)) }
            return []
        }

        var replies: [Int: [ReceivedMessage]] = [:]
        var interrupted = Set<Int>()
        var open = quiet ? Set([checkpoint!]) : Set(indices)
        while !open.isEmpty {
            let n = ReceiveBuffer.receive(nl)
            if n < 0 {
                let e = Errno(rawValue: Glibc.errno)
                if e == .interrupted { continue }
                for i in open { results[i] = .failure(SystemCallError("recvmsg(netlink)", requests[i].context.description, errno: e)) }
                return []
            }
            for msg in ReceivedMessage.split(ReceiveBuffer.bytes(n)) {
                // Only answers to our own outstanding requests count; strays (late answers to an
                // abandoned request) are dropped.
                guard msg.portID == portID || msg.portID == 0, let i = bySequence[msg.sequence],
                      open.contains(i) || (quiet && results[i] == nil) else { continue }
                if msg.flags & UInt16(NLM_F_DUMP_INTR) != 0 { interrupted.insert(i) }
                switch Int32(msg.type) {
                case NLMSG_NOOP:
                    continue
                case NLMSG_ERROR:
                    open.remove(i)
                    let status = Self.decodeStatus(msg, isDone: false)
                    if status.code == 0 {
                        results[i] = .success(replies[i] ?? [])
                    } else {
                        results[i] = .failure(NetlinkError(context: requests[i].context, errno: Errno(rawValue: -status.code),
                                                           kernelMessage: status.message, attributeOffset: status.offset))
                    }
                case NLMSG_DONE:
                    open.remove(i)
                    let status = Self.decodeStatus(msg, isDone: true)
                    if status.code < 0 {
                        results[i] = .failure(NetlinkError(context: requests[i].context, errno: Errno(rawValue: -status.code),
                                                           kernelMessage: status.message, attributeOffset: status.offset))
                    } else {
                        results[i] = .success(replies[i] ?? [])
                    }
                case NLMSG_OVERRUN:
                    open.remove(i)
                    results[i] = .failure(NetlinkProtocolError("NLMSG_OVERRUN answering \(requests[i].context)"))
                default:
                    replies[i, default: []].append(msg)
                }
            }
        }
        // Errors-only: whatever did not fail before the last request's ACK succeeded.
        if quiet { for i in indices where results[i] == nil { results[i] = .success(replies[i] ?? []) } }
        // A dump marked interrupted is retried, never returned half-consistent.
        return indices.filter { interrupted.contains($0) && (try? results[$0]?.get()) != nil }
    }

    // MARK: nfnetlink transactions

    /// Sends `requests` as one nfnetlink batch (`NFNL_MSG_BATCH_BEGIN` … `NFNL_MSG_BATCH_END`
    /// for `subsystem`, e.g. `NFNL_SUBSYS_NFTABLES`) in a single `sendmsg`, so the kernel commits
    /// all of them or none. Throws the first request's error if the kernel refused any (then
    /// nothing was changed); `allErrors` in the thrown ``NetlinkTransactionError`` lists them all.
    public func transaction(_ requests: [NetlinkRequest], subsystem: UInt16) throws {
        guard !requests.isEmpty else { return }
        lock.lock()
        defer { lock.unlock() }
        guard let nl = socket else { throw SystemCallError("send", "nfnetlink batch", errno: .badFileDescriptor) }

        func batchMarker(_ type: Int32, _ seq: UInt32) -> [UInt8] {
            var m = NetlinkMessage(type: type, flags: Int32(0), sequence: seq)
            var g = nfgenmsg()
            g.nfgen_family = UInt8(AF_UNSPEC)
            g.version = UInt8(NFNETLINK_V0)
            g.res_id = subsystem.bigEndian
            m.append(header: g)
            return m.bytes
        }
        let beginSequence = nextSequence
        var buffer = batchMarker(Int32(NFNL_MSG_BATCH_BEGIN), beginSequence)
        nextSequence &+= 1
        // Only the last request asks for an ACK: the kernel reports every refused request anyway,
        // and sends all answers together once the batch is processed, so the last answer means
        // every answer is in. (An ACK per request overflows the receive buffer at ~20k requests.)
        var bySequence: [UInt32: Int] = [:]
        for (i, r) in requests.enumerated() {
            var m = r.message
            m.sequence = nextSequence
            if i == requests.count - 1 { m.flags |= UInt16(NLM_F_ACK) } else { m.flags &= ~UInt16(NLM_F_ACK) }
            bySequence[nextSequence] = i
            nextSequence &+= 1
            buffer.append(contentsOf: m.bytes)
        }
        buffer += batchMarker(Int32(NFNL_MSG_BATCH_END), nextSequence)
        nextSequence &+= 1

        // The whole batch must fit one socket send buffer.
        let fd = mnl_socket_get_fd(nl)
        var size = Int32(clamping: max(8 * 1024 * 1024, buffer.count + 64 * 1024))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))

        let sent = buffer.withUnsafeBytes { mnl_socket_sendto(nl, $0.baseAddress, $0.count) }
        if sent < 0 { throw SystemCallError("sendmsg(nfnetlink batch)", "\(requests.count) requests", errno: Errno(rawValue: Glibc.errno)) }

        var failures: [(Int, NetlinkError)] = []
        var done = false
        while !done {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 60_000) <= 0 {
                throw SystemCallError("recvmsg(nfnetlink batch)", "no answer to \(requests.count) requests in 60 s", errno: .timedOut)
            }
            let n = ReceiveBuffer.receive(nl)
            if n < 0 {
                let e = Errno(rawValue: Glibc.errno)
                if e == .interrupted { continue }
                throw SystemCallError("recvmsg(nfnetlink batch)", "\(requests.count) requests", errno: e)
            }
            for msg in ReceivedMessage.split(ReceiveBuffer.bytes(n)) {
                guard msg.portID == portID || msg.portID == 0, Int32(msg.type) == NLMSG_ERROR else { continue }
                let status = Self.decodeStatus(msg, isDone: false)
                if msg.sequence == beginSequence {
                    // The kernel could not even queue the errors (out of memory): nothing applied.
                    throw NetlinkError(context: RequestContext("nfnetlink batch of \(requests.count) requests"),
                                       errno: Errno(rawValue: -status.code), kernelMessage: status.message)
                }
                guard let i = bySequence[msg.sequence] else { continue }
                if status.code != 0 {
                    failures.append((i, NetlinkError(context: requests[i].context, errno: Errno(rawValue: -status.code),
                                                     kernelMessage: status.message, attributeOffset: status.offset)))
                }
                if i == requests.count - 1 { done = true }
            }
        }
        if !failures.isEmpty {
            throw NetlinkTransactionError(allErrors: failures.sorted { $0.0 < $1.0 }.map(\.1), requests: requests.count)
        }
    }

    /// The error code and extended ACK of an `NLMSG_ERROR` (or `NLMSG_DONE`) message.
    public static func decodeStatus(_ msg: ReceivedMessage, isDone: Bool) -> (code: Int32, message: String?, offset: UInt32?) {
        guard msg.payload.count >= 4 else { return (-Int32(EPROTO), "short error message", nil) }
        let code = msg.payload.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        guard msg.flags & UInt16(NLM_F_ACK_TLVS) != 0 else { return (code, nil, nil) }
        let tlvStart: Int
        if isDone {
            tlvStart = 4
        } else if msg.flags & UInt16(NLM_F_CAPPED) != 0 {
            tlvStart = MemoryLayout<nlmsgerr>.size
        } else {
            // The whole request was echoed after the error code.
            let echoedLength = msg.payload.count >= 8 ? msg.payload.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) } : 0
            tlvStart = 4 + Int(quiver_nlmsg_align(echoedLength))
        }
        guard tlvStart <= msg.payload.count else { return (code, nil, nil) }
        let tlvs = NetlinkAttributes(bytes: msg.payload, start: tlvStart, end: msg.payload.count)
        return (code, tlvs.string(NLMSGERR_ATTR_MSG.rawValue), tlvs.u32(NLMSGERR_ATTR_OFFS.rawValue))
    }
}

/// The kernel refused an nfnetlink batch; it committed none of it.
public struct NetlinkTransactionError: Error, Sendable, CustomStringConvertible {
    /// Every refused request, in batch order (the first is usually the cause).
    public var allErrors: [NetlinkError]
    public var requests: Int
    public var first: NetlinkError { allErrors[0] }
    public var description: String {
        "\(first) (batch of \(requests) requests rolled back" + (allErrors.count > 1 ? "; \(allErrors.count - 1) more refused)" : ")")
    }
}

/// One receive buffer per thread, shared by every socket the thread uses: a thread receives on
/// one socket at a time, and replies are copied out of the buffer as soon as they arrive. A
/// buffer per socket cost a fresh 64 KiB (heap growth and page faults) for each of the 1000
/// hosts a large topology reads.
enum ReceiveBuffer {
    static let size = 64 * 1024
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { free($0) }
        return key
    }()

    /// `recvmsg` into the calling thread's buffer; returns the byte count (or -1 with errno).
    static func receive(_ nl: OpaquePointer) -> Int {
        let buffer: UnsafeMutableRawPointer
        if let existing = pthread_getspecific(key) {
            buffer = existing
        } else {
            buffer = malloc(size)!
            pthread_setspecific(key, buffer)
        }
        return mnl_socket_recvfrom(nl, buffer, size)
    }

    /// The bytes the calling thread's last `receive` returned.
    static func bytes(_ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: pthread_getspecific(key)!, count: count)
    }
}
