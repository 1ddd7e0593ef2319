import ArgumentParser
import QuiverFabric
import QuiverTopology

/// `quiver schema`: the JSON Schema of topology files, made from the same field table the parser
/// checks keys against (as containerlab ships one for its files).
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema (draft 2020-12) of topology files, for editors; --markdown: the field tables of docs/TOPOLOGY.md.",
        discussion: "With the YAML language server: put `# yaml-language-server: $schema=topology.schema.json` on a file's first line.")

    @Flag(help: "Print the docs' field tables instead.") var markdown = false

    func run() throws {
        if markdown {
            print(TopologyFields.sections.map { "### \($0.title)\n" + $0.markdown }.joined(separator: "\n"))
            print("### `expect[]` kinds\n")
            print(TopologyFields.expectations.map { "#### \($0.title)\n" + $0.markdown }.joined(separator: "\n"))
        } else {
            print(try TopologySchema.text())
        }
    }
}
