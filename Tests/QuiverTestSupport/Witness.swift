import Foundation

/// Runs an independent witness (`ip`, `tc`, `nft`) and returns what it printed on standard
/// output; throws if it exits non-zero. Tests use it to check what Quiver built; Quiver never
/// runs these tools itself.
public func witnessText(_ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw WitnessError(command: args.joined(separator: " "), status: p.terminationStatus) }
    return String(decoding: data, as: UTF8.self)
}

/// Like ``witnessText(_:)`` but whatever the exit status (some checks expect a failure).
public func witnessOutput(_ args: [String]) -> String {
    (try? witnessText(args)) ?? ""
}

public struct WitnessError: Error, CustomStringConvertible {
    public var command: String
    public var status: Int32
    public var description: String { "witness `\(command)` exited \(status)" }
}
