import Foundation

/// quiver-bench SUITE [options] — see bench/README.md. Each suite prints a table.
@main
struct QuiverBench {
    static func main() throws {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let suite = args.first else {
            print("usage: quiver-bench links [N ...]")
            exit(2)
        }
        switch suite {
        case "links":
            let sizes = args.dropFirst().compactMap { Int($0) }
            try LinksBenchmark.run(sizes: sizes.isEmpty ? [100, 1000] : sizes)
        case "links-variants":
            try LinksBenchmark.variants(n: Int(args.dropFirst().first ?? "1000") ?? 1000)
        default:
            print("unknown suite \(suite)")
            exit(2)
        }
    }
}
