import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import QuiverKernel

/// `--metrics-address`: an IP literal and a port (`127.0.0.1:9464`, `[::1]:9464`), never a host
/// name (nothing is resolved), or `none`.
public struct MetricsAddress: Sendable, Equatable, CustomStringConvertible {
    public static let `default` = MetricsAddress(host: "127.0.0.1", port: 9464)
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws {
        var host = Substring(text), port = Substring("")
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw Self.refusal(text) }
            port = rest.dropFirst()
        } else if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        } else {
            throw Self.refusal(text)
        }
        guard (try? IPAddress(String(host))) != nil else { throw Self.refusal(text) }
        guard !port.isEmpty, port.utf8.allSatisfy({ (48...57).contains($0) }), port.count <= 5, let p = Int(port), p <= 65535 else {
            throw Self.refusal(text)
        }
        self.host = String(host)
        self.port = p
    }

    private static func refusal(_ text: String) -> PersistentStoreError {
        PersistentStoreError("--metrics-address \(InvalidValue.quoted(text)) is not ADDRESS:PORT with an IP address (IPv6 in brackets) and a port 0–65535",
                             "e.g. 127.0.0.1:9464 (the default) or [::1]:9464, or `none`")
    }

    public var isLoopback: Bool { host == "::1" || host.hasPrefix("127.") }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// `/metrics` over HTTP/1.1 (swift-nio's NIOHTTP1: one route needs no web framework). `GET
/// /metrics` answers `render()` in the Prometheus text format; anything else is 404 or 405. One
/// event-loop thread of its own: a scrape that reads the kernel blocks only other scrapes.
public final class MetricsServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    /// Where it listens (with the port the kernel chose for port 0).
    public let boundPort: Int

    public init(_ address: MetricsAddress, render: @escaping @Sendable () -> PrometheusText.Exposition) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(render: render))
                }
            }
        do {
            channel = try bootstrap.bind(host: address.host, port: address.port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw PersistentStoreError("--metrics-address \(address): cannot listen (\(error))", "choose another address or port, or `none`")
        }
        boundPort = channel.localAddress?.port ?? address.port
    }

    public func close() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let render: @Sendable () -> PrometheusText.Exposition
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () -> PrometheusText.Exposition) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            let path = h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? h.uri
            let (status, body, type): (HTTPResponseStatus, PrometheusText.Exposition, String)
            if h.method != .GET && h.method != .HEAD {
                (status, body, type) = (.methodNotAllowed, .plain("only GET\n"), "text/plain; charset=utf-8")
            } else if path == "/metrics" {
                (status, body, type) = (.ok, render(), "text/plain; version=0.0.4; charset=utf-8")
            } else {
                (status, body, type) = (.notFound, .plain("quiver daemon: metrics are at /metrics\n"), "text/plain; charset=utf-8")
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.count)")
            if !h.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))), promise: nil)
            if h.method != .HEAD {
                var buffer = context.channel.allocator.buffer(capacity: body.count)
                body.write { buffer.writeBytes($0) }
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
            let keepAlive = h.isKeepAlive
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { bound.value.close(promise: nil) }
            }
        }
    }
}
