import Foundation

/// A CNI error result: the code the specification reserves (or Quiver's own, from 100), a short
/// message for the runtime, details for people. Printed on stdout as the spec's error JSON; the
/// plugin exits non-zero.
public struct CNIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var msg: String
    public var details: String

    public init(_ code: Code, _ msg: String, details: String = "") {
        self.code = code.rawValue
        self.msg = msg
        self.details = details
    }

    /// Codes 1–99 are the specification's (SPEC.md, "Error"); 100 on are Quiver's.
    public enum Code: Int, Sendable {
        case incompatibleVersion = 1
        case unsupportedField = 2
        case unknownContainer = 3
        case invalidEnvironment = 4
        case ioFailure = 5
        case decodeFailure = 6
        case invalidConfig = 7
        case tryAgainLater = 11
        case notAvailable = 50
        case limitedConnectivity = 51
        /// Something foreign is where Quiver would put its caps: nothing was changed.
        case conflict = 100
        /// CHECK found the attachment's caps missing or different.
        case checkFailed = 101
    }

    public var description: String { details.isEmpty ? msg : "\(msg): \(details)" }

    /// The spec's error object.
    public func json(cniVersion: String) -> [String: Any] {
        var o: [String: Any] = ["cniVersion": cniVersion, "code": code, "msg": msg]
        if !details.isEmpty { o["details"] = details }
        return o
    }
}
