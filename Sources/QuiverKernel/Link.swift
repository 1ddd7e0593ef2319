import CNetlink
import Glibc
import QuiverNetlink
import SystemPackage

/// A kind of link that rtnetlink can create (`IFLA_INFO_KIND`): bridge, veth, ifb, macvtap, vxlan.
public protocol LinkKind: Sendable {
    /// The kernel's kind string.
    static var kind: String { get }
    /// Fills `IFLA_INFO_DATA` (called inside `IFLA_LINKINFO`); kinds without data do nothing.
    func encodeInfoData(into message: inout NetlinkMessage)
    /// Attributes outside `IFLA_LINKINFO` the kind needs (e.g. `IFLA_LINK` for a lower device).
    func encodeLinkAttributes(into message: inout NetlinkMessage)
    /// Requests to send right after creation, in the same namespace (e.g. bringing a veth peer up).
    func followUpRequests() -> [NetlinkRequest]
}

extension LinkKind {
    public func encodeLinkAttributes(into message: inout NetlinkMessage) {}
    public func followUpRequests() -> [NetlinkRequest] { [] }
}

/// A namespace to put a new link (or a veth peer) in: `IFLA_NET_NS_FD` or `IFLA_NET_NS_PID`.
/// The descriptor must stay open until the request has been executed.
public enum NamespaceTarget: Sendable, Equatable {
    case fd(Int32)
    case pid(Int32)

    func encode(into m: inout NetlinkMessage) {
        switch self {
        case .fd(let fd): m.put(IFLA_NET_NS_FD, u32: UInt32(bitPattern: fd))
        case .pid(let pid): m.put(IFLA_NET_NS_PID, u32: UInt32(bitPattern: pid))
        }
    }
}

/// Attributes common to every link, for creating or changing one. nil leaves a value alone.
public struct LinkSettings: Sendable, Equatable {
    public var up: Bool?
    public var mtu: UInt32?
    public var mac: MACAddress?
    /// Index of the bridge to enslave to; 0 releases from any master.
    public var masterIndex: Int32?
    public var group: UInt32?
    /// `ifalias`; "" clears it.
    public var alias: String?
    public var txQueueLength: UInt32?
    /// Move the link into another namespace.
    public var namespace: NamespaceTarget?
    /// Queue counts, at creation only (`numtxqueues`/`numrxqueues`); the kernel's default for a
    /// veth is one per possible CPU, each with its sysfs objects.
    public var txQueues: UInt32?
    public var rxQueues: UInt32?
    /// At creation only: the interface index to give the link (`ip link add … index N`).
    public var index: Int32?
    /// `ip link set … addrgenmode eui64|none`: false keeps the link from giving itself an IPv6
    /// link-local address (and so from duplicate address detection, MLD reports and router
    /// solicitations) when it comes up; an address already there stays. The kernel applies it
    /// only to an existing link, after any up/down in the same request.
    public var ipv6LinkLocal: Bool?

    public init(up: Bool? = nil, mtu: UInt32? = nil, mac: MACAddress? = nil, masterIndex: Int32? = nil,
                group: UInt32? = nil, alias: String? = nil, txQueueLength: UInt32? = nil,
                namespace: NamespaceTarget? = nil, txQueues: UInt32? = nil, rxQueues: UInt32? = nil,
                ipv6LinkLocal: Bool? = nil) {
        self.ipv6LinkLocal = ipv6LinkLocal
        self.txQueues = txQueues
        self.rxQueues = rxQueues
        self.up = up
        self.mtu = mtu
        self.mac = mac
        self.masterIndex = masterIndex
        self.group = group
        self.alias = alias
        self.txQueueLength = txQueueLength
        self.namespace = namespace
    }

    /// The `ifinfomsg` for these settings: `IFF_UP` in flags/change only when `up` is set.
    func header(index: Int32 = 0) -> ifinfomsg {
        var h = ifinfomsg()
        h.ifi_family = UInt8(AF_UNSPEC)
        h.ifi_index = index
        if let up {
            h.ifi_change = UInt32(IFF_UP)
            h.ifi_flags = up ? UInt32(IFF_UP) : 0
        }
        return h
    }

    /// Everything but the header, the alias and the IPv6 mode (the kernel ignores `IFLA_IFALIAS`
    /// and `IFLA_AF_SPEC` when creating).
    func encode(into m: inout NetlinkMessage) {
        if let mtu { m.put(IFLA_MTU, u32: mtu) }
        if let mac { m.put(IFLA_ADDRESS, bytes: mac.bytes) }
        if let masterIndex { m.put(IFLA_MASTER, u32: UInt32(bitPattern: masterIndex)) }
        if let group { m.put(IFLA_GROUP, u32: group) }
        if let txQueueLength { m.put(IFLA_TXQLEN, u32: txQueueLength) }
        if let txQueues { m.put(IFLA_NUM_TX_QUEUES, u32: txQueues) }
        if let rxQueues { m.put(IFLA_NUM_RX_QUEUES, u32: rxQueues) }
        namespace?.encode(into: &m)
    }
}

extension LinkSettings {
    /// The ``ipv6LinkLocal`` value for a link that should have no IPv6 link-local address:
    /// false where the kernel has IPv6, nil where it runs without (it would refuse the setting).
    public static let noLinkLocal: Bool? = access("/proc/sys/net/ipv6", F_OK) == 0 ? false : nil
}

/// Request builders for links (no I/O), so callers can batch them. Each has the iproute2 command
/// it is equivalent to.
public enum LinkRequest {
    /// `ip link add NAME [settings] type KIND ...` (or `replace` when `replace` is set).
    /// Returns a second request when an alias is set: the kernel applies `ifalias` only to an
    /// existing link.
    public static func add(_ name: InterfaceName, _ kind: some LinkKind, _ settings: LinkSettings = LinkSettings(),
                           replace: Bool = false) -> [NetlinkRequest] {
        let flags = replace ? NLM_F_CREATE | NLM_F_REPLACE : NLM_F_CREATE | NLM_F_EXCL
        var m = NetlinkMessage(type: RTM_NEWLINK, flags: flags)
        // A link that must come up without a link-local address is created down, given its IPv6
        // mode, then brought up: the mode only exists once the link does.
        let deferUp = settings.ipv6LinkLocal == false && settings.up == true
        var created = settings
        if deferUp { created.up = nil }
        m.append(header: created.header(index: settings.index ?? 0))
        m.put(IFLA_IFNAME, string: name.rawValue)
        settings.encode(into: &m)
        kind.encodeLinkAttributes(into: &m)
        m.nest(IFLA_LINKINFO) { info in
            info.put(IFLA_INFO_KIND, string: type(of: kind).kind)
            kind.encodeInfoData(into: &info)
        }
        var out = [NetlinkRequest(m, RequestContext("create \(type(of: kind).kind) link", name.rawValue))]
        if settings.alias != nil || settings.ipv6LinkLocal != nil {
            out.append(change(name, LinkSettings(alias: settings.alias, ipv6LinkLocal: settings.ipv6LinkLocal)))
        }
        if deferUp { out.append(change(name, LinkSettings(up: true))) }
        return out + kind.followUpRequests()
    }

    /// `ip link set NAME [up|down] [mtu N] [address MAC] [master BR|nomaster] [group N] [alias A]
    /// [netns NS] [addrgenmode eui64|none]`.
    public static func change(_ name: InterfaceName, _ settings: LinkSettings) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_NEWLINK, flags: 0)
        m.append(header: settings.header())
        m.put(IFLA_IFNAME, string: name.rawValue)
        settings.encode(into: &m)
        if let alias = settings.alias { m.put(IFLA_IFALIAS, string: alias) }
        if let linkLocal = settings.ipv6LinkLocal {
            let mode = linkLocal ? IN6_ADDR_GEN_MODE_EUI64 : IN6_ADDR_GEN_MODE_NONE
            m.nest(IFLA_AF_SPEC) { spec in
                spec.nest(AF_INET6) { inet6 in inet6.put(IFLA_INET6_ADDR_GEN_MODE, u8: UInt8(mode.rawValue)) }
            }
        }
        return NetlinkRequest(m, RequestContext("change link", name.rawValue))
    }

    /// `ip link del NAME`.
    public static func delete(_ name: InterfaceName) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_DELLINK, flags: 0)
        m.append(header: ifinfomsg())
        m.put(IFLA_IFNAME, string: name.rawValue)
        return NetlinkRequest(m, RequestContext("delete link", name.rawValue))
    }

    /// `ip link del group N`: every link of the group in one request (one RCU wait for all).
    public static func deleteGroup(_ group: UInt32) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_DELLINK, flags: 0)
        m.append(header: ifinfomsg())
        m.put(IFLA_GROUP, u32: group)
        return NetlinkRequest(m, RequestContext("delete links of group", "\(group)"))
    }

    /// `ip link show NAME`.
    public static func get(_ name: InterfaceName) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETLINK, flags: 0)
        m.append(header: ifinfomsg())
        m.put(IFLA_IFNAME, string: name.rawValue)
        return NetlinkRequest(m, RequestContext("get link", name.rawValue))
    }

    /// `ip link show` (dump). Without `statistics` the kernel leaves out every counter block
    /// (`RTEXT_FILTER_SKIP_STATS`: the link's own and IPv6's, summed over CPUs for each link),
    /// which is most of what it would compute and copy for a link.
    public static func dump(statistics: Bool = true) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETLINK, flags: NLM_F_DUMP)
        m.append(header: ifinfomsg())
        if !statistics { m.put(IFLA_EXT_MASK, u32: UInt32(RTEXT_FILTER_SKIP_STATS)) }
        return NetlinkRequest(m, RequestContext("list links"))
    }
}

/// The errors a link request can give, with what they mean.
func explainLinkError(_ error: Error, in location: String) -> Error {
    guard var e = error as? NetlinkError else { return error }
    let what = e.context.object.map { "link \($0)" } ?? "link"
    switch e.errno {
    case .fileExists:
        e.hint = "\(what) already exists in the \(location); pick another name or delete it first"
    case .noSuchDevice:
        e.hint = "\(what) not found in the \(location)"
    case .notSupported, .notSupportedOnSocket:
        e.hint = "this kernel does not support that kind of link or option"
    case .invalidArgument where e.kernelMessage == nil:
        e.hint = "the kernel rejected the request without saying why; check the values"
    default:
        break
    }
    return e
}

extension NetlinkHandle {
    /// Creates a link. Equivalent to `ip link add NAME ... type KIND ...`.
    public func addLink(_ name: InterfaceName, _ kind: some LinkKind, _ settings: LinkSettings = LinkSettings()) throws {
        try performLinks(LinkRequest.add(name, kind, settings))
    }

    /// Changes attributes of an existing link. Equivalent to `ip link set NAME ...`.
    public func setLink(_ name: InterfaceName, _ settings: LinkSettings) throws {
        try performLinks([LinkRequest.change(name, settings)])
    }

    /// Deletes one link. Equivalent to `ip link del NAME`.
    public func deleteLink(_ name: InterfaceName) throws {
        try performLinks([LinkRequest.delete(name)])
    }

    /// Deletes every link in `group` with one request. Returns false if the group had no link.
    /// Group 0 (the default group of every link) is refused.
    @discardableResult
    public func deleteLinks(group: UInt32) throws -> Bool {
        guard group != 0 else {
            throw InvalidValue("refusing to delete link group 0: it is the default group of every link")
        }
        do {
            try perform(LinkRequest.deleteGroup(group))
            return true
        } catch let e as NetlinkError where e.errno == .noSuchDevice {
            return false
        }
    }

    /// Runs link requests pipelined; errors get their meaning (`EEXIST` → already exists ...).
    public func performLinks(_ requests: [NetlinkRequest]) throws {
        for result in socket.execute(requests, acknowledgeEach: false) {
            do { _ = try result.get() } catch { throw explainLinkError(error, in: location) }
        }
    }

    /// One link by name. Equivalent to `ip link show NAME`.
    public func link(named name: InterfaceName) throws -> Link {
        let replies: [ReceivedMessage]
        do { replies = try perform(LinkRequest.get(name)) } catch { throw explainLinkError(error, in: location) }
        guard let reply = replies.first(where: { $0.type == UInt16(RTM_NEWLINK) }) else {
            throw NetlinkProtocolError("no RTM_NEWLINK answering get link \(name)")
        }
        return try Link(decoding: reply)
    }

    /// The link, or nil if there is none of that name.
    public func linkIfPresent(named name: InterfaceName) throws -> Link? {
        do { return try link(named: name) } catch let e as NetlinkError where e.errno == .noSuchDevice { return nil }
    }

    /// Every link of the namespace. Equivalent to `ip -s link show`, or `ip link show` without
    /// `statistics` (counters read as zero then; cheaper for the kernel, for planning).
    public func links(statistics: Bool = true) throws -> [Link] {
        let request = LinkRequest.dump(statistics: statistics)
        return try socket.dump(request.message, request.context)
            .filter { $0.type == UInt16(RTM_NEWLINK) }
            .map { try Link(decoding: $0) }
    }
}
