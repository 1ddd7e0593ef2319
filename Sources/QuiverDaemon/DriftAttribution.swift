import CNetlink
import Foundation
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverTopology

/// What the daemon watches of one applied topology (on one node): the names and numbers by which
/// a kernel notification is known to concern it. Everything here is the topology's own — its
/// link group and names, its host namespaces, its nftables table — so a notification about
/// anything else (a foreign link, qdisc or table) is attributed to no topology and ignored.
public struct WatchedTopology: Sendable, Equatable {
    /// `T`, or `T@node`.
    public var key: String
    /// The fabric namespace's name; nil: the host's.
    public var fabricNamespace: String?
    /// The topology's link group (every fabric link it makes is in it).
    public var group: UInt32
    /// Its fabric links by name: switches, VNIC ports, IFBs, segments, guests' NICs.
    public var linkNames: Set<String>
    /// Its hosts' namespaces: everything in them is the topology's.
    public var hostNamespaces: Set<String>
    /// Its nftables table (in the bridge, inet and netdev families).
    public var table: String

    public init(key: String, fabricNamespace: String?, desired d: DesiredFabric) {
        self.key = key
        self.fabricNamespace = fabricNamespace
        group = d.group
        linkNames = Set(d.fabricLinkNames.map(\.rawValue) + d.vms.flatMap { $0.taps.map(\.name.rawValue) })
        hostNamespaces = Set(d.namespaces.map(\.name.rawValue))
        table = d.names.firewallTable
    }
}

/// One notification attributed to a topology, said the way a log line says it.
public struct DriftEvent: Sendable, Equatable {
    public var key: String
    public var what: String
}

/// Turns the kernel's notifications in one fabric namespace into drift events. It keeps the
/// namespace's links by index (learnt from a dump and from link notifications), because a qdisc,
/// class, filter or address notification names its link by index only — and a deleted link's
/// qdiscs are notified after the link is gone.
public struct FabricAttribution: Sendable {
    public private(set) var links: [Int32: (name: String, group: UInt32)] = [:]

    public init(links: [Link] = []) {
        for l in links { self.links[l.index] = (l.name, l.group) }
    }

    /// The topologies of `watched` (those in this fabric namespace) that `message` concerns.
    public mutating func events(_ message: ReceivedMessage, watched: [WatchedTopology]) -> [DriftEvent] {
        let type = Int(message.type)
        if message.type >> 8 == UInt16(NFNL_SUBSYS_NFTABLES) { return Self.nftables(message, watched: watched) }
        switch type {
        case Int(RTM_NEWLINK), Int(RTM_DELLINK):
            guard let l = try? Link(decoding: message) else { return [] }
            let known = links[l.index]
            if type == Int(RTM_DELLINK) { links[l.index] = nil } else { links[l.index] = (l.name, l.group) }
            let verb = type == Int(RTM_DELLINK) ? "deleted" : "changed"
            return watched.filter { w in w.group == l.group || w.linkNames.contains(l.name) || known.map { w.linkNames.contains($0.name) } == true }
                .map { DriftEvent(key: $0.key, what: "link \(l.name) \(verb)" + (l.isUp || verb == "deleted" ? "" : " (down)")) }
        case Int(RTM_NEWADDR), Int(RTM_DELADDR):
            return byIndex(message, headerIndexOffset: 4, watched: watched, what: type == Int(RTM_DELADDR) ? "address deleted from" : "address added to")
        case Int(RTM_NEWQDISC), Int(RTM_DELQDISC):
            return byIndex(message, headerIndexOffset: 4, watched: watched, what: type == Int(RTM_DELQDISC) ? "qdisc deleted on" : "qdisc changed on")
        case Int(RTM_NEWTCLASS), Int(RTM_DELTCLASS):
            return byIndex(message, headerIndexOffset: 4, watched: watched, what: type == Int(RTM_DELTCLASS) ? "class deleted on" : "class changed on")
        case Int(RTM_NEWTFILTER), Int(RTM_DELTFILTER):
            return byIndex(message, headerIndexOffset: 4, watched: watched, what: type == Int(RTM_DELTFILTER) ? "filter deleted on" : "filter changed on")
        case Int(RTM_NEWROUTE), Int(RTM_DELROUTE):
            guard let r = try? Route(decoding: message), let oif = r.outputIndex else { return [] }
            return attribute(index: oif, watched: watched, what: type == Int(RTM_DELROUTE) ? "route deleted via" : "route added via")
        default:
            return []
        }
    }

    /// A notification whose family header holds the link's index at `headerIndexOffset`
    /// (`ifaddrmsg`, `tcmsg`).
    private func byIndex(_ m: ReceivedMessage, headerIndexOffset: Int, watched: [WatchedTopology], what: String) -> [DriftEvent] {
        guard m.payload.count >= headerIndexOffset + 4 else { return [] }
        let index = m.payload[headerIndexOffset..<headerIndexOffset + 4].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        return attribute(index: index, watched: watched, what: what)
    }

    private func attribute(index: Int32, watched: [WatchedTopology], what: String) -> [DriftEvent] {
        guard let l = links[index] else { return [] }
        return watched.filter { $0.group == l.group || $0.linkNames.contains(l.name) }.map { DriftEvent(key: $0.key, what: "\(what) \(l.name)") }
    }

    /// nftables: every table, chain, rule, set and object message carries its table's name as
    /// attribute 1, after the 4-byte `nfgenmsg`.
    static func nftables(_ m: ReceivedMessage, watched: [WatchedTopology]) -> [DriftEvent] {
        let kind = Int32(m.type & 0xFF)
        let names: [Int32: String] = [Int32(NFT_MSG_NEWTABLE.rawValue): "table added", Int32(NFT_MSG_DELTABLE.rawValue): "table deleted",
                                      Int32(NFT_MSG_NEWCHAIN.rawValue): "chain added", Int32(NFT_MSG_DELCHAIN.rawValue): "chain deleted",
                                      Int32(NFT_MSG_NEWRULE.rawValue): "rule added", Int32(NFT_MSG_DELRULE.rawValue): "rule deleted",
                                      Int32(NFT_MSG_NEWSET.rawValue): "set added", Int32(NFT_MSG_DELSET.rawValue): "set deleted",
                                      Int32(NFT_MSG_NEWSETELEM.rawValue): "set element added", Int32(NFT_MSG_DELSETELEM.rawValue): "set element deleted",
                                      Int32(NFT_MSG_NEWOBJ.rawValue): "object added", Int32(NFT_MSG_DELOBJ.rawValue): "object deleted"]
        guard let verb = names[kind], let table = m.attributes(after: nfgenmsg.self).string(1) else { return [] }
        return watched.filter { $0.table == table }.map { DriftEvent(key: $0.key, what: "nftables \(verb) in \(table)") }
    }
}

/// Notifications from inside a host namespace: all of it is its topology's.
public enum HostAttribution {
    public static func events(_ message: ReceivedMessage, namespace: String, watched: [WatchedTopology]) -> [DriftEvent] {
        let what: String
        switch Int(message.type) {
        case Int(RTM_NEWLINK): what = "link changed"
        case Int(RTM_DELLINK): what = "link deleted"
        case Int(RTM_NEWADDR): what = "address added"
        case Int(RTM_DELADDR): what = "address deleted"
        case Int(RTM_NEWROUTE): what = "route added"
        case Int(RTM_DELROUTE): what = "route deleted"
        default: return []
        }
        return watched.filter { $0.hostNamespaces.contains(namespace) }.map { DriftEvent(key: $0.key, what: "\(what) in namespace \(namespace)") }
    }
}
