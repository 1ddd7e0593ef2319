import Foundation
import Testing

/// `quiver schema`, checked by an independent JSON Schema validator (Debian's python3-jsonschema,
/// draft 2020-12, reading the YAML with python3-yaml): the schema is valid, every example topology
/// passes it, and the fixtures that are wrong in their keys or the shape of a value fail it.
@Suite struct SchemaCommandTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    static let script = """
    import json, sys, yaml, jsonschema
    schema = json.load(open(sys.argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    for f in sys.argv[2:]:
        errors = list(v.iter_errors(yaml.safe_load(open(f))))
        print(f.rsplit("/", 1)[-1], "valid" if not errors else "invalid")
    """

    /// Fixtures whose error is about a key or the type or form of a value (the rest need the whole
    /// file or the host: references, collisions, addresses, files).
    static let rejected = [
        "unknown-top-key", "unknown-switch-key", "unknown-host-key", "unknown-vnic-key", "unknown-flow-key", "typo-allowed-ips",
        "typo-maxbw", "ips-not-list", "vnics-not-list", "missing-name", "missing-tenants", "top-not-mapping", "empty",
        "vm-key-on-netns", "macvtap-on-netns", "link-local-on-vm", "unknown-kind", "unknown-protection", "vm-accel", "vm-mode-unknown",
        "vm-queues", "vm-no-kernel", "expect-unknown-kind", "expect-unknown-key", "expect-unknown-probe", "expect-spoof-kind",
        "expect-bad-endpoint", "expect-no-rate", "flow-no-maxbw", "flow-bad-port", "flow-bad-transport", "bad-unit", "bad-rate-word",
        "bad-mac", "bad-prefix-number", "dash-in-name", "topology-name-too-long", "mtu-too-small", "tenant-no-hosts",
        "host-no-vnics", "macvtap-over-bad-link",
    ]

    @Test func examplesPassAndMalformedKeysAndTypesFail() throws {
        let schema = NSTemporaryDirectory() + "quiver-schema-\(UUID().uuidString).json"
        let out = try quiver(["schema"])
        #expect(out.status == 0)
        try out.stdout.write(toFile: schema, atomically: true, encoding: .utf8)
        defer { unlink(schema) }
        let examples = try FileManager.default.contentsOfDirectory(atPath: Self.repo + "/topologies").filter { $0.hasSuffix(".yaml") }.sorted()
        let fixtures = Self.rejected.map { Self.repo + "/Tests/QuiverTopologyTests/Fixtures/\($0).yaml" }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", Self.script, schema] + examples.map { Self.repo + "/topologies/" + $0 } + fixtures
        let pipe = Pipe(), err = Pipe()
        p.standardOutput = pipe
        p.standardError = err
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(errText)")
        let verdict = Dictionary(uniqueKeysWithValues: text.split(separator: "\n").map { line -> (String, String) in
            let parts = line.split(separator: " ")
            return (String(parts[0]), String(parts[1]))
        })
        for e in examples { #expect(verdict[e] == "valid", "topologies/\(e): \(verdict[e] ?? "not checked")") }
        for f in Self.rejected { #expect(verdict[f + ".yaml"] == "invalid", "\(f).yaml: \(verdict[f + ".yaml"] ?? "not checked")") }
        // And Quiver itself refuses each of them.
        for f in fixtures { #expect(try quiver(["validate", f]).status == 2, "\(f)") }
    }
}
