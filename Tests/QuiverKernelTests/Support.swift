import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverTestSupport
import Testing

/// A namespace the test owns: created fresh, deleted afterwards, and checked to be gone.
func withScratchNamespace<T>(_ body: (NetworkNamespace, NetlinkHandle) throws -> T) throws -> T {
    let name = "qt-" + String(UUID().uuidString.prefix(8)).lowercased()
    let ns = try NetworkNamespace.create(named: name)
    defer {
        do { try NetworkNamespace.delete(named: name) } catch { Issue.record("deleting \(name): \(error)") }
        #expect(!NetworkNamespace.listNamed().contains(name), "namespace \(name) left behind")
        #expect(!FileManager.default.fileExists(atPath: ns.path))
    }
    let handle = try NetlinkHandle(namespace: ns)
    return try body(ns, handle)
}

/// Two scratch namespaces at once.
func withTwoScratchNamespaces<T>(_ body: (NetworkNamespace, NetlinkHandle, NetworkNamespace, NetlinkHandle) throws -> T) throws -> T {
    try withScratchNamespace { a, ha in
        try withScratchNamespace { b, hb in try body(a, ha, b, hb) }
    }
}

/// Runs an iproute2 command as an independent witness and returns its JSON output.
func witness(_ args: [String]) throws -> Any {
    let data = Data(try witnessText(args).utf8)
    if data.isEmpty { return [Any]() }
    return try JSONSerialization.jsonObject(with: data)
}

/// `ip -n NS -j -d link show` as a name → object map.
func ipLinks(_ ns: NetworkNamespace) throws -> [String: [String: Any]] {
    let list = try witness(["ip", "-n", ns.name!, "-j", "-d", "link", "show"]) as? [[String: Any]] ?? []
    var out: [String: [String: Any]] = [:]
    for l in list { if let n = l["ifname"] as? String { out[n] = l } }
    return out
}

extension Dictionary where Key == String, Value == Any {
    func dict(_ k: String) -> [String: Any]? { self[k] as? [String: Any] }
}
