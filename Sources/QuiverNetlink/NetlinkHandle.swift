import CNetlink

/// A route-netlink socket bound to one network namespace. Open it once (the socket is created
/// on a thread inside the namespace), then use it from anywhere. Kernel objects are operations on
/// a handle (see QuiverKernel).
public final class NetlinkHandle: Sendable {
    /// nil: the namespace this process runs in.
    public let namespace: NetworkNamespace?
    public let socket: NetlinkSocket

    public init(namespace: NetworkNamespace? = nil) throws {
        self.namespace = namespace
        if let namespace {
            socket = try namespace.openSocket(protocol: NETLINK_ROUTE)
        } else {
            socket = try NetlinkSocket(protocol: NETLINK_ROUTE)
        }
    }

    /// Where this handle works, for messages.
    public var location: String { namespace?.description ?? "host namespace" }

    /// Runs requests pipelined and throws the first failure (after all were processed).
    public func perform(_ requests: [NetlinkRequest]) throws {
        for result in socket.execute(requests) { _ = try result.get() }
    }

    /// One request; returns the replies it produced.
    @discardableResult
    public func perform(_ request: NetlinkRequest) throws -> [ReceivedMessage] {
        try socket.execute([request])[0].get()
    }

    public func dump(_ message: NetlinkMessage, _ context: RequestContext) throws -> [ReceivedMessage] {
        try socket.dump(message, context)
    }
}
