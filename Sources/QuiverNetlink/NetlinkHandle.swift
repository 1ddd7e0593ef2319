import CNetlink
import SystemPackage

/// A netlink socket (route by default, netfilter for nftables) bound to one network namespace. Open it once (the socket is created
/// on a thread inside the namespace), then use it from anywhere. Kernel objects are operations on
/// a handle (see QuiverKernel).
public final class NetlinkHandle: Sendable {
    /// nil: the namespace this process runs in.
    public let namespace: NetworkNamespace?
    public let socket: NetlinkSocket

    public init(namespace: NetworkNamespace? = nil, protocol proto: Int32 = NETLINK_ROUTE) throws {
        self.namespace = namespace
        if let namespace {
            socket = try namespace.openSocket(protocol: proto)
        } else {
            socket = try NetlinkSocket(protocol: proto)
        }
    }

    init(namespace: NetworkNamespace?, socket: NetlinkSocket) {
        self.namespace = namespace
        self.socket = socket
    }

    /// Opens one handle per namespace, all from a single thread that enters each in turn
    /// (one thread instead of one per namespace: this is what makes reading 1000 hosts fast).
    public static func open(namespaces: [NetworkNamespace]) throws -> [NetlinkHandle] {
        try openEach(namespaces: namespaces).map { try $0.get() }
    }

    /// Like ``open(namespaces:)``, one result per namespace: a file under `/var/run/netns` that
    /// is not (or no longer) a namespace fails alone.
    public static func openEach(namespaces: [NetworkNamespace]) throws -> [Result<NetlinkHandle, Error>] {
        guard !namespaces.isEmpty else { return [] }
        var results: [Result<NetlinkSocket, Error>] = []
        try NetworkNamespace.onFreshThread {
            for ns in namespaces {
                results.append(Result {
                    let fd = try ns.open()
                    defer { try? fd.close() }
                    let rc = quiver_setns(fd.rawValue, quiver_clone_newnet())
                    if rc < 0 { throw SystemCallError("setns", "\(ns)", errno: Errno(rawValue: -rc)) }
                    return try NetlinkSocket(protocol: NETLINK_ROUTE)
                })
            }
        }
        return zip(namespaces, results).map { ns, r in r.map { NetlinkHandle(namespace: ns, socket: $0) } }
    }

    /// Where this handle works, for messages.
    public var location: String { namespace?.description ?? "host namespace" }

    /// Runs requests pipelined and throws the first failure (after all were processed), with
    /// its meaning (``explained(_:)``). Replies are not returned, so only failures and the last
    /// request of each buffer are acknowledged.
    public func perform(_ requests: [NetlinkRequest]) throws {
        for result in socket.execute(requests, acknowledgeEach: false) {
            do { _ = try result.get() } catch { throw explained(error) }
        }
    }

    /// One request; returns the replies it produced.
    @discardableResult
    public func perform(_ request: NetlinkRequest) throws -> [ReceivedMessage] {
        do { return try socket.execute([request])[0].get() } catch { throw explained(error) }
    }

    /// A refusal with what it means for the request's subject, where this handle works.
    func explained(_ error: Error) -> Error {
        guard var e = error as? NetlinkError, e.hint == nil else { return error }
        let what = e.context.object.map { "link \($0)" } ?? "link"
        switch (e.context.subject, e.errno) {
        case (.link, .fileExists):
            e.hint = "\(what) already exists in the \(location); pick another name or delete it first"
        case (.link, .noSuchDevice):
            e.hint = "\(what) not found in the \(location)"
        case (.link, .notSupported), (.link, .notSupportedOnSocket):
            e.hint = "this kernel does not support that kind of link or option"
        case (.link, .invalidArgument) where e.kernelMessage == nil:
            e.hint = "the kernel rejected the request without saying why; check the values"
        default:
            break
        }
        return e
    }

    public func dump(_ message: NetlinkMessage, _ context: RequestContext) throws -> [ReceivedMessage] {
        try socket.dump(message, context)
    }
}
