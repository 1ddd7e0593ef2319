import CNetlink
import QuiverKernel

/// The tc objects one IFB carries for one direction of a cap group: computed, not applied.
public struct IFBLayout: Sendable, Equatable {
    public struct Class: Sendable, Equatable {
        public var id: TCHandle
        public var parent: TCHandle
        public var htb: HTBClass
        /// Leaf classes carry a queue; inner classes nil.
        public var leafQueue: QdiscKind?
        /// What it is for, for `quiver cap show`: "aggregate", "default", a member name, "member/flow".
        public var label: String
    }

    public struct FilterSpec: Sendable, Equatable {
        public var priority: UInt16
        public var protocolNumber: UInt16
        public var filter: U32Filter
    }

    public var direction: Direction
    public var root: TCHandle
    public var defaultClass: TCHandle
    public var classes: [Class]
    public var filters: [FilterSpec]

    /// The leaf queue's handle for a leaf class: major 0x4000 + class minor.
    public static func leafHandle(for classID: TCHandle) -> TCHandle {
        TCHandle(major: 0x4000 &+ classID.minor, minor: 0)
    }
}

/// Handle layout, filter priorities and the planner from a ``CapGroup`` to ``IFBLayout``s.
public enum ShapingPlan {
    /// HTB root on every Quiver IFB.
    public static let root = TCHandle(major: 1, minor: 0)
    public static let aggregate = TCHandle(major: 1, minor: 1)
    public static let defaultClass = TCHandle(major: 1, minor: 2)
    /// Member i: class 1:(0x100 + 16 i); its bulk leaf +1, small-packet leaf +2, flow j +3+j.
    static func memberClass(_ i: Int) -> TCHandle { TCHandle(major: 1, minor: UInt16(0x100 + 16 * i)) }

    /// Filter priorities on the IFBs: flows first (one priority per protocol: the kernel keeps one
    /// protocol per priority), then members.
    public static let flowPriorityV4: UInt16 = 10
    public static let flowPriorityV6: UInt16 = 11
    /// Small packets (IPv4 total length / IPv6 payload below 256 bytes) to the member's priority leaf.
    public static let smallPriorityV4: UInt16 = 15
    public static let smallPriorityV6: UInt16 = 16
    public static let memberPriority: UInt16 = 20
    /// Priorities of the redirect filters on a member device's clsact hooks. Two values because
    /// u32 lists every table of a priority of the qdisc in a dump of either hook.
    public static let deviceIngressPriority: UInt16 = 0xC1
    public static let deviceEgressPriority: UInt16 = 0xC2

    /// The smallest rate HTB is given (it refuses 0).
    static let minimumRate = Bitrate.kbit(8)

    /// Plans one direction. The group must have no ``CapGroup/problems()``.
    public static func layout(_ g: CapGroup, _ d: Direction, policy: ShapingPolicy = ShapingPolicy()) -> IFBLayout {
        let ceilings = g.members.map { $0.maxbw(d) ?? g.maxbw }
        // Without a group cap, the aggregate is what all members together may use.
        // HTB refuses a zero rate: a group whose members are all blocked still gets the minimum.
        let aggregateRate: Bitrate = max(minimumRate, g.maxbw ?? Bitrate(bitsPerSecond: min(Bitrate.maximum.bitsPerSecond,
            ceilings.reduce(UInt64(0)) { $0 + ($1?.bitsPerSecond ?? Bitrate.maximum.bitsPerSecond) })))
        let unlimited = aggregateRate

        // Default class: unclassified frames (broadcast towards endpoints, for instance) share
        // the aggregate but are guaranteed little.
        let defaultRate = max(minimumRate, Bitrate(bitsPerSecond: min(1_000_000, aggregateRate.bitsPerSecond / 100)))
        var classes: [IFBLayout.Class] = [
            .init(id: aggregate, parent: root, htb: policy.htb(rate: aggregateRate, ceil: aggregateRate), leafQueue: nil, label: "aggregate"),
            .init(id: defaultClass, parent: aggregate, htb: policy.htb(rate: defaultRate, ceil: aggregateRate),
                  leafQueue: policy.leafQueue(for: aggregateRate), label: "default"),
        ]

        // Members without a floor split what the floors and the default class leave.
        let floors = g.members.reduce(UInt64(0)) { $0 + ($1.floor?.bitsPerSecond ?? 0) }
        let withoutFloor = g.members.filter { $0.floor == nil }.count
        let spare = aggregateRate.bitsPerSecond > floors + defaultRate.bitsPerSecond
            ? aggregateRate.bitsPerSecond - floors - defaultRate.bitsPerSecond : 0
        let share = Bitrate(bitsPerSecond: withoutFloor == 0 ? 0 : spare / UInt64(withoutFloor))

        var filters: [IFBLayout.FilterSpec] = []
        for (i, m) in g.members.enumerated() {
            let id = memberClass(i)
            let ceil = min(m.maxbw(d) ?? unlimited, aggregateRate)
            let burst = m.burst(d)
            let macKeys = m.mac.map { d == .fromEndpoint ? U32Key.etherSource($0) : U32Key.etherDestination($0) } ?? []
            if ceil.isBlocked {
                // maxbw 0: one leaf that drops everything.
                classes.append(.init(id: id, parent: aggregate, htb: policy.htb(rate: minimumRate, ceil: minimumRate),
                                     leafQueue: policy.leafQueue(for: ceil), label: m.name))
                filters.append(.init(priority: memberPriority, protocolNumber: UInt16(ETH_P_ALL),
                                     filter: U32Filter(keys: macKeys.isEmpty ? U32Key.all : macKeys, classID: id)))
                continue
            }
            let rate = min(ceil, max(minimumRate, m.floor ?? share))
            // What a guest sends arrives in bursts (``ShapingPolicy/guestMinQueue``).
            let bulkLimit = m.queueLimit ?? (d == .fromEndpoint && m.guestSender == true ? policy.guestQueueLimit(for: ceil) : nil)
            // The member is an inner class; its traffic goes to one of its leaves:
            //   +1 bulk (prio 1), +2 small packets (prio 0: ACKs, pings, DNS — they do not wait
            //   behind bulk data, which keeps a saturated cap's added latency low), +3… flows.
            classes.append(.init(id: id, parent: aggregate, htb: policy.htb(rate: rate, ceil: ceil, burst: burst), leafQueue: nil, label: m.name))
            let smallRate = max(minimumRate, Bitrate(bitsPerSecond: rate.bitsPerSecond / 10))
            let bulkRate = max(minimumRate, Bitrate(bitsPerSecond: rate.bitsPerSecond - min(rate.bitsPerSecond, smallRate.bitsPerSecond)))
            let bulk = TCHandle(major: 1, minor: id.minor + 1)
            let small = TCHandle(major: 1, minor: id.minor + 2)
            classes.append(.init(id: bulk, parent: id, htb: policy.htb(rate: bulkRate, ceil: ceil, priority: 1, burst: burst),
                                 leafQueue: policy.leafQueue(for: ceil, limit: bulkLimit), label: m.name + "/other"))
            // Small packets are never TSO super-packets: a plain byte FIFO serves (one qdisc, not two).
            classes.append(.init(id: small, parent: id, htb: policy.htb(rate: smallRate, ceil: ceil, priority: 0, burst: burst),
                                 leafQueue: .bfifo(limit: m.queueLimit ?? policy.queueLimit(for: ceil)), label: m.name + "/small"))
            for (j, f) in m.flows.enumerated() {
                let fid = TCHandle(major: 1, minor: id.minor + 3 + UInt16(j))
                let fceil = min(f.maxbw.isBlocked ? minimumRate : f.maxbw, ceil)
                classes.append(.init(id: fid, parent: id, htb: policy.htb(rate: minimumRate, ceil: fceil, priority: 1, burst: burst),
                                     leafQueue: policy.leafQueue(for: f.maxbw.isBlocked ? f.maxbw : fceil, limit: f.maxbw.isBlocked ? m.queueLimit : bulkLimit),
                                     label: m.name + "/" + f.name))
                for (proto, keys) in flowKeys(f, mac: m.mac, direction: d) {
                    filters.append(.init(priority: proto == UInt16(ETH_P_IP) ? flowPriorityV4 : flowPriorityV6, protocolNumber: proto,
                                         filter: U32Filter(keys: keys, classID: fid)))
                }
            }
            filters.append(.init(priority: smallPriorityV4, protocolNumber: UInt16(ETH_P_IP),
                                 filter: U32Filter(keys: macKeys + [U32Key.ipv4ShortPacket], classID: small)))
            filters.append(.init(priority: smallPriorityV6, protocolNumber: UInt16(ETH_P_IPV6),
                                 filter: U32Filter(keys: macKeys + [U32Key.ipv6ShortPacket], classID: small)))
            filters.append(.init(priority: memberPriority, protocolNumber: UInt16(ETH_P_ALL),
                                 filter: U32Filter(keys: macKeys.isEmpty ? U32Key.all : macKeys, classID: bulk)))
        }
        return IFBLayout(direction: d, root: root, defaultClass: defaultClass, classes: classes, filters: filters)
    }

    /// u32 keys for a flow, one set per IP family it can match (both when it names no prefix).
    static func flowKeys(_ f: FlowCap, mac: MACAddress?, direction d: Direction) -> [(UInt16, [U32Key])] {
        let macKeys = mac.map { d == .fromEndpoint ? U32Key.etherSource($0) : U32Key.etherDestination($0) } ?? []
        // Local is the endpoint's side: source when it sends, destination when it receives.
        let (src, dst) = d == .fromEndpoint ? (f.localIP, f.remoteIP) : (f.remoteIP, f.localIP)
        let (sport, dport) = d == .fromEndpoint ? (f.localPort, f.remotePort) : (f.remotePort, f.localPort)
        let family = (f.localIP ?? f.remoteIP)?.address.isV4
        var out: [(UInt16, [U32Key])] = []
        if family != false {
            var k = macKeys
            if sport != nil || dport != nil { k.append(U32Key.ipv4NoOptions) }
            if let s = src { k += U32Key.ipv4Source(s) }
            if let t = dst { k += U32Key.ipv4Destination(t) }
            if let t = f.transport { k.append(U32Key.ipv4Protocol(t.protocolNumber(v6: false))) }
            if let p = sport { k.append(U32Key.ipv4SourcePort(p)) }
            if let p = dport { k.append(U32Key.ipv4DestinationPort(p)) }
            out.append((UInt16(ETH_P_IP), k.isEmpty ? U32Key.all : k))
        }
        if family != true {
            var k = macKeys
            if let s = src { k += U32Key.ipv6Source(s) }
            if let t = dst { k += U32Key.ipv6Destination(t) }
            if let t = f.transport { k.append(U32Key.ipv6NextHeader(t.protocolNumber(v6: true))) }
            if let p = sport { k.append(U32Key.ipv6SourcePort(p)) }
            if let p = dport { k.append(U32Key.ipv6DestinationPort(p)) }
            out.append((UInt16(ETH_P_IPV6), k.isEmpty ? U32Key.all : k))
        }
        return out
    }
}
