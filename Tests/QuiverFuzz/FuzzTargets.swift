import Foundation
import QuiverFabric
import QuiverProtection
import QuiverTopology

/// What the fuzzer feeds Quiver's parsers, target by target. Each target takes raw bytes and must
/// never crash or hang, whatever they are; where an input is accepted, what it was parsed into
/// must read back the same (a rate, prefix or MAC printed and parsed again is itself), and an
/// accepted topology must go through the pure engine — its desired state, a plan against an
/// empty kernel, its ruleset — without a crash.
enum FuzzTarget: String, CaseIterable {
    case topology, rate, cidr, mac

    func run(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        switch self {
        case .topology:
            guard let t = try? TopologyParser.parse(text, file: "fuzz.yaml") else { return }
            let made = Result { try DesiredFabric(t) }
            guard case .success(let desired) = made else { return check(false, "a valid topology has an invalid kernel name: \(made)") }
            let plan = Planner.plan(current: CurrentFabric(links: [], hosts: [:]), desired: desired)
            check(plan.conflicts.isEmpty, "a plan against an empty kernel has conflicts: \(plan.conflicts)")
            if let rules = desired.ruleset() { _ = rules.body().count + rules.macvtapBody().count }
            _ = TopologyGraph.render(t, format: .dot)
        case .rate:
            guard let r = try? Bitrate(text) else { return }
            check((try? Bitrate(r.description)) == r, "rate \(text) prints as \(r) which reads back differently")
            check(r.isBlocked || r >= Bitrate.minimumPositive, "rate \(text) is below the smallest positive rate")
        case .cidr:
            if let p = try? IPPrefix(text) {
                check((try? IPPrefix(p.description)) == p, "prefix \(text) prints as \(p) which reads back differently")
                check(p.contains(p.address), "prefix \(p) does not contain its own address")
            }
            if let a = try? IPAddress(text) { check((try? IPAddress(a.description)) == a, "address \(text) does not read back") }
        case .mac:
            if let m = try? MACAddress(text) { check((try? MACAddress(m.description)) == m, "MAC \(text) prints as \(m) which reads back differently") }
            _ = try? MACAddress.unicast(text)
            // The other names a user types.
            if let n = try? InterfaceName(validating: text) { check(!n.rawValue.contains("/") && n.rawValue.utf8.count <= 15, "interface name \(text)") }
            if let n = try? TopologyName(validating: text) { check(!n.rawValue.contains(".") && n.rawValue.utf8.count <= 8, "topology name \(text)") }
            if let n = try? NamespaceName(validating: text) { check(!n.rawValue.contains("/") && !n.rawValue.hasPrefix("."), "namespace name \(text)") }
        }
    }

    func check(_ ok: Bool, _ what: @autoclosure () -> String) {
        if !ok {
            FileHandle.standardError.write(Data("quiver-fuzz \(rawValue): \(what())\n".utf8))
            abort()
        }
    }

    /// From `QUIVER_FUZZ_TARGET`.
    static var selected: FuzzTarget {
        let name = ProcessInfo.processInfo.environment["QUIVER_FUZZ_TARGET"] ?? "topology"
        guard let t = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("quiver-fuzz: QUIVER_FUZZ_TARGET is one of \(allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        return t
    }
}

#if QUIVER_FUZZ
/// libFuzzer's driver (from `-sanitize=fuzzer`). SwiftPM makes an executable's entry point its own
/// `main`, so the harness starts the driver itself rather than using libFuzzer's `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// The entry point libFuzzer's own `main` names (linked in, never run).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTarget.selected.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
struct QuiverFuzz {
    static func main() {
        _ = FuzzTarget.selected   // a wrong name stops here, before the fuzzer starts
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
    }
}
#else
/// Without the fuzzer: `quiver-fuzz TARGET FILE...` runs each file through the target — to replay
/// a crash libFuzzer found, or the seeds, in an ordinary build.
@main
struct QuiverFuzz {
    static func main() throws {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let name = args.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: quiver-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE...")
            exit(2)
        }
        for path in args.dropFirst() {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            data.withUnsafeBytes { target.run($0) }
            print("\(path): ok")
        }
    }
}
#endif
