import ArgumentParser
import Foundation
import QuiverFabric
import QuiverTopology

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Run the topology's expect: block against what is applied; exit 1 if any row fails.",
        discussion: """
        Kinds: reach / no-reach (probes icmp, tcp, arp), bandwidth (TCP for N seconds, compared on \
        the wire with the rate ± tolerance), spoof (forged frames: none delivered, the VNIC's \
        protection counter grew by the number sent). See docs/TOPOLOGY.md.
        """)

    @Argument(help: "Topology file, or the name of an applied topology.") var target: String
    @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format")) var output: OutputFormat = .table
    @OptionGroup var fabric: FabricOptions

    func run() throws {
        let path = try topologyFile(target)
        let t = try loadTopology(path, json: output == .json)
        guard !t.expectations.isEmpty else {
            throw ValidationError("\(path) has no expectations; add an `expect:` list (see docs/TOPOLOGY.md)")
        }
        let live = output == .table && isatty(STDERR_FILENO) == 1
        let f = try fabric.open()
        if let node = fabric.node, t.nodes.isEmpty { throw ValidationError("--node \(node): \(path) has no `nodes:`") }
        let rows = try f.verify(t, node: fabric.node) { r in
            if live { FileHandle.standardError.write(Data("\(r.passed ? "pass" : "FAIL")  #\(r.index) \(r.kind) \(r.from) → \(r.to)\n".utf8)) }
        }
        let failed = rows.filter { !$0.passed }.count
        switch output {
        case .json:
            struct Out: Encodable { var topology: String; var passed: Bool; var rows: [VerifyRow] }
            print(try renderJSON(Out(topology: t.name, passed: failed == 0, rows: rows)))
        case .table:
            var table = Table(["#", "RESULT", "KIND", "FROM", "TO", "DETAIL"])
            for r in rows { table.add([String(r.index), r.passed ? "pass" : "FAIL", r.kind, r.from, r.to, r.detail]) }
            print(table.render())
            print("\(rows.count - failed) of \(rows.count) expectations hold")
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
