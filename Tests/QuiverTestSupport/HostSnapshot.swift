import Foundation

/// What a hostile input must leave exactly as it was, read by independent witnesses (`ip`, `tc`,
/// `nft`) and `lstat`: every named network namespace; the links, qdiscs and nftables rules of the
/// host and of the namespaces given; every entry under `/run/quiver` and `/var/lib/quiver` (and under `watched`
/// paths) with its type, mode, owner, size and, for files, contents' modification time.
/// Counters and other values that traffic changes are left out.
public struct HostSnapshot: Equatable, CustomStringConvertible {
    public var namespaces: [String]
    public var links: [String: [String]]
    public var qdiscs: [String: [String]]
    public var rules: [String: [String]]
    public var files: [String]

    public static func take(namespaces extra: [String] = [], watched: [String] = []) -> HostSnapshot {
        let names = witnessOutput(["ip", "netns", "list"]).split(separator: "\n").map { String($0.split(separator: " ")[0]) }.sorted()
        var s = HostSnapshot(namespaces: names, links: [:], qdiscs: [:], rules: [:], files: [])
        for ns in [""] + extra {
            let n = ns.isEmpty ? [] : ["-n", ns]
            s.links[ns] = json(["ip", "-j"] + n + ["link", "show"]).map { l in
                ["ifname", "group", "ifalias", "master", "link_type", "address", "flags"].map { "\(l[$0] ?? "-")" }.joined(separator: " ")
            }.sorted()
            s.qdiscs[ns] = json(["tc", "-j"] + n + ["qdisc", "show"]).map { q in
                ["dev", "kind", "handle", "parent"].map { "\(q[$0] ?? "-")" }.joined(separator: " ")
            }.sorted()
            let exec = ns.isEmpty ? [] : ["ip", "netns", "exec", ns]
            let ruleset = (try? JSONSerialization.jsonObject(with: Data(witnessOutput(exec + ["nft", "-j", "list", "ruleset"]).utf8))) as? [String: Any]
            s.rules[ns] = ((ruleset?["nftables"] as? [[String: Any]]) ?? []).compactMap { item -> String? in
                guard let (kind, body) = item.first, kind != "metainfo", var b = body as? [String: Any] else { return nil }
                b["packets"] = nil
                b["bytes"] = nil
                b["handle"] = nil
                return kind + " " + (String(data: (try? JSONSerialization.data(withJSONObject: b, options: [.sortedKeys])) ?? Data(), encoding: .utf8) ?? "")
            }.sorted()
        }
        for root in ["/run/quiver", "/var/lib/quiver"] + watched { s.files += tree(root) }
        return s
    }

    static func json(_ args: [String]) -> [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(witnessOutput(args).utf8))) as? [[String: Any]] ?? []
    }

    /// `path type mode uid size mtime` for `root` and everything below it, links not followed.
    static func tree(_ root: String) -> [String] {
        var out: [String] = []
        var st = stat()
        guard lstat(root, &st) == 0 else { return ["\(root) absent"] }
        let type = st.st_mode & S_IFMT
        // A directory's own time changes when an entry comes and goes again; its entries tell.
        let time = type == S_IFDIR ? "" : " \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        out.append("\(root) \(String(type, radix: 8)) \(String(st.st_mode & 0o7777, radix: 8)) \(st.st_uid) \(type == S_IFDIR ? 0 : st.st_size)\(time)")
        if type == S_IFDIR {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted() { out += tree(root + "/" + name) }
        }
        return out
    }

    /// What differs between two snapshots, one line per difference.
    public func difference(from other: HostSnapshot) -> [String] {
        var d: [String] = []
        func compare(_ what: String, _ a: [String], _ b: [String]) {
            for x in Set(a).subtracting(b).sorted() { d.append("\(what): gone: \(x)") }
            for x in Set(b).subtracting(a).sorted() { d.append("\(what): new: \(x)") }
        }
        compare("namespaces", other.namespaces, namespaces)
        for ns in Set(links.keys).union(other.links.keys).sorted() {
            compare("links \(ns)", other.links[ns] ?? [], links[ns] ?? [])
            compare("qdiscs \(ns)", other.qdiscs[ns] ?? [], qdiscs[ns] ?? [])
            compare("rules \(ns)", other.rules[ns] ?? [], rules[ns] ?? [])
        }
        compare("files", other.files, files)
        return d
    }

    public var description: String { "\(namespaces.count) namespaces, \(files.count) files" }
}
