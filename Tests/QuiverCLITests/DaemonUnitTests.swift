import Foundation
import QuiverTestSupport
import Testing

/// contrib/quiver.service as systemd reads it: `systemd-analyze verify` accepts it with
/// ExecStart pointed at the quiver just built (the unit names /usr/local/bin/quiver, where the
/// README installs it), and rejects a broken copy — so the check can fail.
@Suite struct DaemonUnitTests {
    func verify(_ unit: String) throws -> (Int32, String) {
        let dir = NSTemporaryDirectory() + "quiver-unit-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try unit.write(toFile: "\(dir)/quiver.service", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        p.arguments = ["verify", "\(dir)/quiver.service"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    @Test func unitVerifies() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else {
            print("skipped: systemd-analyze is not installed (scripts/setup.sh installs systemd)")
            return
        }
        let unit = try String(contentsOfFile: "\(repositoryRoot)/contrib/quiver.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/local/bin/quiver daemon"))
        let built = unit.replacingOccurrences(of: "/usr/local/bin/quiver", with: quiverBinary)
        let (status, text) = try verify(built)
        #expect(status == 0 && text.isEmpty, "\(text)")

        let broken = built.replacingOccurrences(of: "Type=simple", with: "Type=sometimes")
            .replacingOccurrences(of: quiverBinary, with: "/nonexistent/quiver")
        let (bad, why) = try verify(broken)
        #expect(bad != 0, "a unit with a missing binary verified: \(why)")
        #expect(why.contains("/nonexistent/quiver") && why.contains("service type"), "\(why)")
    }
}
