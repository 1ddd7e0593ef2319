import ArgumentParser
import QuiverKernel
import QuiverNetlink

/// `quiver links`: the analogue of `dladm show-link` (and `dladm show-link -s`).
struct LinksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "links",
        abstract: "List links with their class, MTU, state, bridge and underlying link (like dladm show-link).")

    @Option(help: "Network namespace name (as in `ip netns`); default: the host namespace.")
    var netns: String?

    @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format"))
    var output: OutputFormat = .table

    @Flag(name: .short, help: "Show counters: IPKTS RBYTES IERRORS OPKTS OBYTES OERRORS.")
    var statistics = false

    func run() throws {
        let handle = try NetlinkHandle(namespace: try netns.map { try namespace($0, option: "--netns") })
        let rows = LinkRow.rows(try handle.links())
        switch output {
        case .json:
            print(try renderJSON(rows))
        case .table where statistics:
            var t = Table(["LINK", "IPKTS", "RBYTES", "IERRORS", "OPKTS", "OBYTES", "OERRORS"])
            for r in rows {
                let s = r.statistics ?? LinkStatistics()
                t.add([r.link, "\(s.rxPackets)", "\(s.rxBytes)", "\(s.rxErrors)", "\(s.txPackets)", "\(s.txBytes)", "\(s.txErrors)"])
            }
            print(t.render())
        case .table:
            var t = Table(["LINK", "CLASS", "MTU", "STATE", "BRIDGE", "OVER"])
            for r in rows { t.add([r.link, r.linkClass, "\(r.mtu)", r.state, r.bridge ?? "--", r.over ?? "--"]) }
            print(t.render())
        }
    }
}

/// One row of `quiver links`, also its JSON form.
struct LinkRow: Encodable {
    var link: String
    var linkClass: String
    var mtu: UInt32
    var state: String
    var bridge: String?
    var over: String?
    var mac: String?
    var alias: String?
    var group: UInt32
    var statistics: LinkStatistics?

    enum CodingKeys: String, CodingKey {
        case link, linkClass = "class", mtu, state, bridge, over, mac, alias, group, statistics
    }

    static func rows(_ links: [Link]) -> [LinkRow] {
        let byIndex = Dictionary(links.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        return links.sorted { $0.index < $1.index }.map { l in
            let master = l.masterIndex.flatMap { byIndex[$0] }
            // The link it sits on: a veth's peer, a macvtap's or vxlan's lower link.
            var over: String?
            if let i = l.linkIndex, i != l.index, i != 0 {
                over = l.linkNetnsID == nil ? (byIndex[i]?.name ?? "#\(i)") : "#\(i)@nsid\(l.linkNetnsID!)"
            }
            let state = l.operState == .unknown ? (l.isUp ? "up" : "down") : l.operState.description
            return LinkRow(link: l.name, linkClass: l.linkClass, mtu: l.mtu, state: state,
                           bridge: master?.kind == "bridge" ? master?.name : nil, over: over,
                           mac: l.mac?.description, alias: l.alias, group: l.group, statistics: l.statistics)
        }
    }
}
