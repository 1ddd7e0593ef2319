import Foundation
import QuiverFabric
import QuiverTopology
import Testing

/// The field table is the one place keys are declared: the docs show exactly it, and the parser
/// takes exactly its keys.
@Suite struct FieldTableTests {
    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/TOPOLOGY.md").standardized.path

    /// Each `<!-- fields: ID -->` … `<!-- /fields -->` block of docs/TOPOLOGY.md is the table of
    /// that section, as `quiver schema --markdown` prints it.
    @Test func docsShowTheFieldTable() throws {
        let text = try String(contentsOfFile: Self.docs, encoding: .utf8)
        var shown: [String] = []
        for s in TopologyFields.sections + TopologyFields.expectations {
            let open = "<!-- fields: \(s.id) -->\n"
            guard let a = text.range(of: open) else { continue }
            let b = try #require(text.range(of: "<!-- /fields -->", range: a.upperBound..<text.endIndex))
            #expect(String(text[a.upperBound..<b.lowerBound]) == s.markdown,
                    "docs/TOPOLOGY.md's table of \(s.id) is out of date; it should read:\n\(s.markdown)")
            shown.append(s.id)
        }
        #expect(shown == ["topology", "node", "switch", "tenant", "host", "vnic", "flow", "reach", "bandwidth", "spoof", "configured"])
        // `no-reach` takes `reach`'s fields (one table in the docs).
        #expect(TopologyFields.noReach.keys == TopologyFields.reach.keys)
    }

    /// Every key of the table is one the parser takes, and no other: a file with every key of a
    /// section set gets no unknown-key error for it, and a key outside the table gets one.
    @Test func theParserTakesExactlyTheTablesKeys() throws {
        for s in TopologyFields.sections + TopologyFields.expectations {
            #expect(Set(s.keys).count == s.keys.count, "\(s.id) declares a key twice")
        }
        let vnicKeys = TopologyFields.vnic.keys.filter { !["name", "over"].contains($0) }
        var text = "name: ft\nswitches: [{name: sw0}]\ntenants:\n  - name: a\n    hosts:\n      - name: h\n        vnics:\n          - name: n0\n            over: sw0\n"
        for k in vnicKeys { text += "            \(k): x\n" }
        text += "            bogus_key: 1\n"
        let e = "\((#expect(throws: TopologyErrors.self) { try TopologyParser.parse(text, file: "f.yaml") })!)"
        #expect(!vnicKeys.contains { e.contains("unknown key `\($0)`") }, "\(e)")
        #expect(e.contains("unknown key `bogus_key` in vnic"))
    }
}
