import CNetlink
import QuiverNetlink

/// What a qdisc is, with its options. Kinds this kernel has: htb, tbf, bfifo, pfifo, ingress,
/// clsact (see shared/KERNEL.md: no fq_codel, sfq, prio, netem).
public enum QdiscKind: Sendable, Equatable {
    /// Hierarchical token bucket. `defaultClass` is the minor of the class unclassified traffic
    /// goes to (0: none, such traffic is sent unshaped).
    case htb(defaultClass: UInt16, r2q: UInt32 = 10)
    case tbf(TBF)
    /// Byte-limited FIFO; a limit of 0 drops everything (how Quiver blocks a `maxbw: 0` link).
    case bfifo(limit: UInt32)
    case pfifo(limit: UInt32)
    case ingress
    /// Hooks at ingress and egress without queueing. With block indices, the hooks use shared
    /// filter blocks: filters added once to a block apply to every device bound to it.
    case clsact(ingressBlock: UInt32? = nil, egressBlock: UInt32? = nil)
    case other(String)

    public var name: String {
        switch self {
        case .htb: return "htb"
        case .tbf: return "tbf"
        case .bfifo: return "bfifo"
        case .pfifo: return "pfifo"
        case .ingress: return "ingress"
        case .clsact: return "clsact"
        case .other(let k): return k
        }
    }

    func encodeOptions(into m: inout NetlinkMessage) {
        switch self {
        case .htb(let defcls, let r2q):
            m.nest(TCA_OPTIONS) { o in
                var g = tc_htb_glob()
                g.version = 3
                g.rate2quantum = r2q
                g.defcls = UInt32(defcls)
                o.put(TCA_HTB_INIT, value: g)
            }
        case .tbf(let t):
            t.encodeOptions(into: &m)
        case .bfifo(let limit), .pfifo(let limit):
            var q = tc_fifo_qopt()
            q.limit = limit
            m.put(TCA_OPTIONS, value: q)
        case .clsact(let ingress, let egress):
            // Block indices are top-level attributes of the qdisc message, not options.
            if let ingress { m.put(TCA_INGRESS_BLOCK, u32: ingress) }
            if let egress { m.put(TCA_EGRESS_BLOCK, u32: egress) }
        case .ingress, .other:
            break
        }
    }

    init(kind: String, options: NetlinkAttributes?, raw: [UInt8]?, top: NetlinkAttributes? = nil) {
        switch kind {
        case "htb":
            let g = options?.value(TCA_HTB_INIT, as: tc_htb_glob.self)
            self = .htb(defaultClass: UInt16(truncatingIfNeeded: g?.defcls ?? 0), r2q: g?.rate2quantum ?? 10)
        case "tbf":
            self = .tbf(TBF(decoding: options))
        case "bfifo", "pfifo":
            var limit: UInt32 = 0
            if let raw, raw.count >= 4 { limit = raw.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }
            self = kind == "bfifo" ? .bfifo(limit: limit) : .pfifo(limit: limit)
        case "ingress": self = .ingress
        case "clsact": self = .clsact(ingressBlock: top?.u32(TCA_INGRESS_BLOCK), egressBlock: top?.u32(TCA_EGRESS_BLOCK))
        default: self = .other(kind)
        }
    }
}

/// A qdisc as the kernel reports it.
public struct Qdisc: Sendable, Equatable {
    public var ifindex: Int32
    public var handle: TCHandle
    public var parent: TCHandle
    public var kind: QdiscKind
    public var statistics: TCStatistics

    /// True for the qdiscs the kernel attaches by itself (`noqueue`, `pfifo_fast`, `mq` and its
    /// children): they have handle 0. Anything with a handle was added by someone.
    public var isKernelDefault: Bool { handle.rawValue == 0 }

    public init(decoding message: ReceivedMessage) throws {
        let h = try message.header(as: tcmsg.self)
        let a = message.attributes(after: tcmsg.self)
        ifindex = h.tcm_ifindex
        handle = TCHandle(rawValue: h.tcm_handle)
        parent = TCHandle(rawValue: h.tcm_parent)
        kind = QdiscKind(kind: a.string(TCA_KIND) ?? "", options: a.nested(TCA_OPTIONS), raw: a.payload(TCA_OPTIONS), top: a)
        statistics = TCStatistics(decoding: a)
    }
}

public enum QdiscRequest {
    /// `tc qdisc {add|replace|change} dev DEV parent P handle H KIND ...`.
    public static func make(_ verb: TCVerb, ifindex: Int32, device: String, handle: TCHandle, parent: TCHandle,
                            kind: QdiscKind) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_NEWQDISC, flags: verb.flags)
        m.append(header: tcHeader(ifindex: ifindex, handle: handle, parent: parent))
        m.put(TCA_KIND, string: kind.name)
        kind.encodeOptions(into: &m)
        return NetlinkRequest(m, RequestContext("\(verb.word) \(kind.name) qdisc \(handle) on", device))
    }

    /// `tc qdisc del dev DEV parent P [handle H]`.
    public static func delete(ifindex: Int32, device: String, handle: TCHandle, parent: TCHandle) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_DELQDISC, flags: 0)
        m.append(header: tcHeader(ifindex: ifindex, handle: handle, parent: parent))
        return NetlinkRequest(m, RequestContext("delete qdisc \(handle) from", device))
    }

    /// `tc qdisc show [dev DEV]`. With strict dumps (the socket turns them on) the kernel itself
    /// skips other devices when an index is given.
    public static func dump(ifindex: Int32 = 0) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETQDISC, flags: NLM_F_DUMP)
        m.append(header: tcHeader(ifindex: ifindex, handle: .unspecified, parent: .unspecified))
        return NetlinkRequest(m, RequestContext("list qdiscs"))
    }
}

extension NetlinkHandle {
    /// Qdiscs of one device, or of all devices when `ifindex` is nil. Equivalent to `tc -s qdisc show`.
    public func qdiscs(ifindex: Int32? = nil) throws -> [Qdisc] {
        let r = QdiscRequest.dump(ifindex: ifindex ?? 0)
        return try socket.dump(r.message, r.context)
            .filter { $0.type == UInt16(RTM_NEWQDISC) }
            .map(Qdisc.init(decoding:))
            .filter { ifindex == nil || $0.ifindex == ifindex }
    }
}
