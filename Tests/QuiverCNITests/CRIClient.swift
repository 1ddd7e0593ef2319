import Foundation
import QuiverValues

/// A Container Runtime Interface client for tests: it calls containerd's CRI plugin the way the
/// kubelet does, so a test can start pods whose annotations the runtime itself turns into the
/// CNI `bandwidth` capability. It is built from Debian's own tools rather than a gRPC stack
/// compiled into the tests: `protoc` encodes each request from protobuf text format and decodes
/// the reply (with `CRI/runtime.proto`, the part of the API the tests call), and `curl` carries
/// it as a gRPC call over HTTP/2 on the runtime's Unix socket. gRPC's framing is the one thing
/// written here: a flag byte and a 4-byte length before each message.
struct CRIClient {
    let socket: String
    /// Where requests and replies are kept for curl; a directory of the test's own.
    let scratch: String

    static let proto = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("CRI/runtime.proto")
    static let tools = ["/usr/bin/protoc", "/usr/bin/curl"]

    /// Calls `runtime.v1.RuntimeService/METHOD` with `request` (text format of
    /// `METHODRequest`) and returns the reply as text format of `METHODResponse`.
    func call(_ method: String, _ request: String = "") throws -> String {
        let encoded = try Self.protoc(["--encode=runtime.v1.\(method)Request"], input: Array(request.utf8))
        var frame: [UInt8] = [0]
        withUnsafeBytes(of: UInt32(encoded.count).bigEndian) { frame.append(contentsOf: $0) }
        frame += encoded
        let headers = "\(scratch)/\(method).headers"
        let reply = try Spawn.run(["/usr/bin/curl", "--silent", "--show-error", "--max-time", "120", "--http2-prior-knowledge",
                                   "--unix-socket", socket, "--header", "content-type: application/grpc", "--header", "te: trailers",
                                   "--data-binary", "@-", "--dump-header", headers, "--output", "-",
                                   "http://localhost/runtime.v1.RuntimeService/\(method)"],
                                  descriptors: [], captureOutput: true, input: frame)
        guard reply.status == 0 else { throw CRIFailed(method: method, message: "curl exited \(reply.status): \(reply.stderr)") }
        // The status comes in the trailers, which curl writes after the headers.
        let fields = try String(contentsOfFile: headers, encoding: .utf8).split(whereSeparator: \.isNewline)
        func field(_ name: String) -> String? {
            fields.last { $0.lowercased().hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
        }
        guard let status = field("grpc-status") else { throw CRIFailed(method: method, message: "no grpc-status in the reply: \(fields)") }
        guard status == "0" else {
            let message = field("grpc-message").map { $0.removingPercentEncoding ?? $0 } ?? ""
            throw CRIFailed(method: method, message: "grpc-status \(status): \(message)")
        }
        let body = [UInt8](reply.stdout)
        guard body.count >= 5, body[0] == 0 else { throw CRIFailed(method: method, message: "a reply of \(body.count) bytes is not one uncompressed gRPC message") }
        let length = body[1...4].reduce(0) { $0 << 8 | Int($1) }
        guard body.count == 5 + length else { throw CRIFailed(method: method, message: "the reply holds \(body.count - 5) bytes, its frame says \(length)") }
        return String(decoding: try Self.protoc(["--decode=runtime.v1.\(method)Response"], input: Array(body[5...])), as: UTF8.self)
    }

    static func protoc(_ args: [String], input: [UInt8]) throws -> [UInt8] {
        let o = try Spawn.run(["/usr/bin/protoc", "--proto_path=\(proto.deletingLastPathComponent().path)"] + args + [proto.path],
                              descriptors: [], captureOutput: true, input: input)
        guard o.status == 0 else { throw CRIFailed(method: "protoc", message: o.stderr) }
        return [UInt8](o.stdout)
    }

    /// A string in protobuf text format.
    static func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// The first string field `name` in a reply (text format), as protoc prints it.
    static func field(_ name: String, in text: String) -> String? {
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix(name + ": \""), t.hasSuffix("\"") { return String(t.dropFirst(name.count + 3).dropLast()) }
        }
        return nil
    }
}

struct CRIFailed: Error, CustomStringConvertible {
    var method: String
    var message: String
    var description: String { "CRI \(method): \(message)" }
}
