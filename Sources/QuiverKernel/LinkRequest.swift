import CNetlink
import Dispatch
import Glibc
import QuiverNetlink
import SystemPackage

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
        var out = [NetlinkRequest(m, RequestContext("create \(type(of: kind).kind) link", name.rawValue, subject: .link))]
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
        return NetlinkRequest(m, RequestContext("change link", name.rawValue, subject: .link))
    }

    /// `ip link del NAME`.
    public static func delete(_ name: InterfaceName) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_DELLINK, flags: 0)
        m.append(header: ifinfomsg())
        m.put(IFLA_IFNAME, string: name.rawValue)
        return NetlinkRequest(m, RequestContext("delete link", name.rawValue, subject: .link))
    }

    /// `ip link del group N`: every link of the group in one request (one RCU wait for all).
    public static func deleteGroup(_ group: UInt32) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_DELLINK, flags: 0)
        m.append(header: ifinfomsg())
        m.put(IFLA_GROUP, u32: group)
        return NetlinkRequest(m, RequestContext("delete links of group", "\(group)", subject: .link))
    }

    /// `ip link show NAME`.
    public static func get(_ name: InterfaceName) -> NetlinkRequest {
        var m = NetlinkMessage(type: RTM_GETLINK, flags: 0)
        m.append(header: ifinfomsg())
        m.put(IFLA_IFNAME, string: name.rawValue)
        return NetlinkRequest(m, RequestContext("get link", name.rawValue, subject: .link))
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

extension NetlinkHandle {
    /// Creates a link. Equivalent to `ip link add NAME ... type KIND ...`.
    public func addLink(_ name: InterfaceName, _ kind: some LinkKind, _ settings: LinkSettings = LinkSettings()) throws {
        try perform(LinkRequest.add(name, kind, settings))
    }

    /// Changes attributes of an existing link. Equivalent to `ip link set NAME ...`.
    public func setLink(_ name: InterfaceName, _ settings: LinkSettings) throws {
        try perform([LinkRequest.change(name, settings)])
    }

    /// Deletes one link. Equivalent to `ip link del NAME`.
    public func deleteLink(_ name: InterfaceName) throws {
        try perform([LinkRequest.delete(name)])
    }

    /// Deletes `names`, each on a socket of its own in this handle's namespace, all at once. The
    /// kernel takes its lock for one deletion at a time but waits for a device to be gone after
    /// letting go of it, so the waits overlap: two IFBs go in about the time of one (bench/cni).
    public func deleteLinksTogether(_ names: [InterfaceName]) throws {
        guard names.count > 1 else {
            for n in names { try deleteLink(n) }
            return
        }
        let ns = namespace
        // One slot per deletion: each worker writes only its own.
        let failures = UnsafeMutableBufferPointer<(any Error)?>.allocate(capacity: names.count)
        failures.initialize(repeating: nil)
        defer { failures.deallocate() }
        nonisolated(unsafe) let slots = failures
        DispatchQueue.concurrentPerform(iterations: names.count) { i in
            do { try NetlinkHandle(namespace: ns).deleteLink(names[i]) } catch { slots[i] = error }
        }
        if let e = failures.lazy.compactMap({ $0 }).first { throw e }
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

    /// One link by name. Equivalent to `ip link show NAME`.
    public func link(named name: InterfaceName) throws -> Link {
        let replies = try perform(LinkRequest.get(name))
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
