import Foundation
import QuiverNetlink
import QuiverTestSupport
import Testing

/// The `quiver` binary next to the test bundle.
let quiverBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("quiver").path

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `quiver ARGS` and captures its output.
func quiver(_ args: [String]) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: quiverBinary)
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

/// A namespace the test owns, deleted afterwards.
func withScratchNamespace<T>(_ body: (NetworkNamespace, NetlinkHandle) throws -> T) throws -> T {
    let name = "qc-" + String(UUID().uuidString.prefix(8)).lowercased()
    let ns = try NetworkNamespace.create(named: name)
    defer {
        do { try NetworkNamespace.delete(named: name) } catch { Issue.record("deleting \(name): \(error)") }
        #expect(!NetworkNamespace.listNamed().contains(name), "namespace \(name) left behind")
    }
    return try body(ns, try NetlinkHandle(namespace: ns))
}

/// Starts `quiver ARGS` and kills it with SIGKILL after `delay` seconds (or when it ends first).
func quiverKilled(_ args: [String], after delay: Double) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: quiverBinary)
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    Thread.sleep(forTimeInterval: delay)
    kill(p.processIdentifier, SIGKILL)
    p.waitUntilExit()
}

/// The repository's root (for scripts and the test guest).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

/// Builds (or finds up to date) the test guest in `.build-guest` with scripts/build-test-guest.sh.
func buildTestGuest() throws { try runGuestScript("build-test-guest.sh") }

/// Builds (or finds up to date) the two Debian images of scripts/build-debian-guest.sh.
func buildDebianGuests() throws { try runGuestScript("build-debian-guest.sh") }

/// Runs scripts/NAME with .build-guest as its directory; it must succeed.
func runGuestScript(_ name: String) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = [repositoryRoot + "/scripts/" + name, repositoryRoot + "/.build-guest"]
    try p.run()
    p.waitUntilExit()
    try #require(p.terminationStatus == 0, "scripts/\(name) failed")
}

/// The sha256 of a file, by sha256sum (a witness independent of Quiver).
func sha256(_ path: String) throws -> String {
    String(try witnessText(["sha256sum", path]).prefix(64))
}
