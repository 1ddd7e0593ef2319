import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverValues

/// One container interface's caps: a one-member cap group on the host-side device, its two IFBs
/// tagged `quiver:cni/CONTAINERID/IFNAME` — the tag is how DEL and GC find exactly what ADD made.
/// A record of the group (``CNIRecords``) is a cache for DEL; the kernel stays the truth.
public struct CNIAttachment: Sendable {
    public var containerID: String
    public var ifname: InterfaceName

    public init(containerID: String, ifname: InterfaceName) {
        self.containerID = containerID
        self.ifname = ifname
    }

    public static let tagPrefix = "quiver:cni/"
    public var tag: String { Self.tagPrefix + containerID + "/" + ifname.rawValue }
    var recordName: String { containerID + "@" + ifname.rawValue + ".json" }
    /// Its member name in a tenant's group.
    var memberName: String { containerID + "/" + ifname.rawValue }

    /// The attachment a tag names, if it is one of this plugin's.
    static func parse(tag: String) -> CNIAttachment? {
        guard tag.hasPrefix(tagPrefix) else { return nil }
        let rest = tag.dropFirst(tagPrefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 2, CNIEnvironment.validContainerID(String(rest[0])), let i = try? InterfaceName(validating: String(rest[1])) else { return nil }
        return CNIAttachment(containerID: String(rest[0]), ifname: i)
    }

    /// The host side of the container's interface: the container's `ifname` is a veth (or
    /// another link with a peer) whose `IFLA_LINK` is the peer's index in this namespace.
    static func hostDevice(netns: String, ifname: InterfaceName, host: NetlinkHandle) throws -> (host: Link, container: Link) {
        let ns = NetworkNamespace(path: netns)
        guard ns.exists else { throw CNIError(.unknownContainer, "the network namespace \(InvalidValue.quoted(netns, limit: 80)) does not exist") }
        let inside = try NetlinkHandle(namespace: ns)
        guard let link = try inside.linkIfPresent(named: ifname) else {
            throw CNIError(.unknownContainer, "the container has no interface \(ifname)", details: "the plugin before quiver-cni in the chain makes it")
        }
        guard let peer = link.linkIndex, link.linkNetnsID != nil, let hostSide = try host.links(statistics: false).first(where: { $0.index == peer }) else {
            throw CNIError(.invalidConfig, "\(ifname) in the container has no peer in the runtime's namespace",
                           details: "quiver-cni caps a veth pair's host side (after bridge or ptp); \(ifname) is a \(link.kind ?? "device")")
        }
        return (hostSide, link)
    }

    /// The group for `device` with `bandwidth` and `flows`: egress (what the container sends) is
    /// the `from` direction, ingress (what it receives) the `to` one; a direction not given is
    /// uncapped (its flows still are).
    func group(device: Link, bandwidth: CNIBandwidth?, flows: [FlowCap] = []) throws -> CapGroup {
        let dev = try InterfaceName(validating: device.name)
        var m = CapMember(name: ifname.rawValue, device: dev, maxbw: bandwidth?.egressRate ?? .maximum, flows: flows, burst: bandwidth?.egressBurstBytes)
        m.maxbwToEndpoint = bandwidth?.ingressRate ?? .maximum
        m.burstToEndpoint = bandwidth?.ingressBurstBytes
        return CapGroup(name: "cni/" + ifname.rawValue, ifbFrom: try InterfaceName(validating: "qcf\(device.index)"),
                        ifbTo: try InterfaceName(validating: "qct\(device.index)"), members: [m], ownerTag: tag)
    }

    /// Makes the caps (or changes them in place) and records the group.
    func apply(_ g: CapGroup, on host: NetlinkHandle) throws {
        // A records directory that cannot be made stops it before anything changes.
        _ = try CNIRecords.directory(create: true)
        try CNIRecords.shaping { try Shaper(handle: host).apply(g) }
        try CNIRecords.write(recordName, g)
    }

    /// What an apply of `g` would change: nothing for a CHECK that passes.
    func differences(_ g: CapGroup, on host: NetlinkHandle) throws -> ShapingReport {
        var s = Shaper(handle: host)
        s.compareOnly = true
        return try s.apply(g)
    }

    /// Removes what ADD made, found by tag: the hooks on the host device (when it is still
    /// there and bound to this attachment's blocks) and the two IFBs. Nothing there is fine.
    func remove(on host: NetlinkHandle) throws {
        let recorded = try CNIRecords.read(recordName, as: CapGroup.self)
        let links = try host.links(statistics: false)
        if let g = recorded, g.ownerTag == tag, let dev = g.members.first?.device, let l = links.first(where: { $0.name == dev.rawValue }) {
            let hooks = try host.qdiscs(ifindex: l.index).first { $0.parent == .ingressParent }
            if case .clsact(let ingress, let egress)? = hooks?.kind, ingress == g.ingressBlock, egress == g.egressBlock {
                try Shaper(handle: host).detach(device: dev)
            }
        }
        try host.deleteLinksTogether(try links.filter { $0.alias == tag && $0.kind == "ifb" }.map { try InterfaceName(validating: $0.name) })
        try CNIRecords.remove(recordName)
    }
}
