import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology
import QuiverVM

/// What a topology should look like in the kernel, derived from the file (pure).
public struct DesiredFabric: Sendable, Equatable {
    public struct Bridge: Sendable, Equatable {
        public var name: String
        public var tag: String
        public var mtu: UInt32?
    }

    public struct VNIC: Sendable, Equatable {
        public var tenant: String
        public var host: String
        public var name: String
        /// Host-side device (in the fabric) and the switch it is plugged in.
        public var hostDevice: String
        public var bridge: String
        public var namespace: String
        /// nil: `mac: random` (kept from the kernel once made).
        public var mac: MACAddress?
        public var mtu: UInt32?
        public var ips: [IPPrefix]
        public var gateway: IPAddress?
        public var tag: String
        public var protection: Set<ProtectionKind> = []
        /// Sources `ip-nospoof` allows: `allowed-ips`, or each of `ips` as a host prefix.
        public var allowed: [IPPrefix] = []
        /// A VM host's NIC: `hostDevice` is a tap fed to qemu, `name` is the guest's `ethN`,
        /// `namespace` is empty.
        public var isVM = false
        /// A VM NIC in `mode: macvtap`: `hostDevice` is a macvtap over `bridge`, the guest's own
        /// end (its transmit is what the guest sends).
        public var isMacvtap = false
        /// Netns hosts: whether the endpoint has an IPv6 link-local address.
        public var linkLocal = false

        /// The endpoint's own view of `hostDevice`'s counters: a fabric port's transmit is what
        /// the endpoint receives; a macvtap is the guest's own end, so there it is the other way
        /// round.
        public func endpointCounters(_ s: LinkStatistics) -> (receivedPackets: UInt64, receivedBytes: UInt64,
                                                              sentPackets: UInt64, sentBytes: UInt64) {
            isMacvtap ? (s.rxPackets, s.rxBytes, s.txPackets, s.txBytes) : (s.txPackets, s.txBytes, s.rxPackets, s.rxBytes)
        }
    }

    /// A `kind: vm` host: what to start and where its run directory is.
    public struct VM: Sendable, Equatable {
        public var tenant: String
        public var host: String
        public var directory: String
        public var spec: VMSpec
        /// Where each NIC's device goes, same order as `spec.nics`.
        public var taps: [NICDevice]
    }

    /// A VM NIC's device in the fabric.
    public struct NICDevice: Sendable, Equatable {
        /// The tap or macvtap.
        public var name: String
        /// A tap's switch, or a macvtap's lower link: a switch's bridge or a host link.
        public var bridge: String
        /// ifalias: the owner tag.
        public var tag: String
        public var macvtap: Bool
        /// The lower link is a switch of the topology (not a host link Quiver does not own).
        public var overSwitch: Bool
    }

    public struct Namespace: Sendable, Equatable {
        public var name: String
        public var tag: String
    }

    public var topology: String
    public var group: UInt32
    public var bridges: [Bridge]
    public var namespaces: [Namespace]
    public var vnics: [VNIC]
    /// One per tenant that has any cap.
    public var capGroups: [CapGroup]
    public var vms: [VM]

    /// The fabric links the topology keeps, apart from guests' NICs (made when their guest
    /// starts): switches, VNIC ports and the tenants' IFBs.
    public var fabricLinkNames: [String] {
        bridges.map(\.name) + vnics.filter { !$0.isVM }.map(\.hostDevice) + capGroups.flatMap { [$0.ifbFrom.rawValue, $0.ifbTo.rawValue] }
    }

    public init(_ t: Topology) {
        let n = KernelNames(t.name)
        topology = t.name
        group = n.group
        bridges = t.switches.map { Bridge(name: n.bridge($0.name), tag: n.switchTag($0.name), mtu: $0.mtu) }
        // A VNIC's lower link: its switch's bridge, or — a macvtap whose `over:` names no switch —
        // a host link of that name.
        func lower(_ v: Topology.VNIC) -> (name: String, isSwitch: Bool) {
            t.switches.contains { $0.name == v.over } ? (n.bridge(v.over), true) : (v.over, false)
        }
        var namespaces: [Namespace] = []
        var vnics: [VNIC] = []
        var groups: [CapGroup] = []
        var vms: [VM] = []
        for tenant in t.tenants {
            var members: [CapMember] = []
            for host in tenant.hosts {
                let ns = host.vm == nil ? n.namespace(tenant: tenant.name, host: host.name) : ""
                if let m = host.vm {
                    var nics: [VMNIC] = []
                    var taps: [NICDevice] = []
                    for (i, v) in host.vnics.enumerated() {
                        let mac: MACAddress
                        if case .fixed(let f) = v.mac { mac = f } else { mac = n.autoMAC(tenant: tenant.name, host: host.name, vnic: v.name) }
                        nics.append(VMNIC(tap: n.hostDevice(host: host.name, vnic: v.name), mac: mac, queues: v.queues, guestDevice: "eth\(i)",
                                          address: v.ips.first { $0.address.isV4 }, gateway: v.gateway, macvtap: v.mode == "macvtap"))
                        let (bridge, overSwitch) = lower(v)
                        taps.append(NICDevice(name: n.hostDevice(host: host.name, vnic: v.name), bridge: bridge,
                                              tag: n.vnicTag(tenant: tenant.name, host: host.name, vnic: v.name),
                                              macvtap: v.mode == "macvtap", overSwitch: overSwitch))
                    }
                    let spec = VMSpec(name: "\(t.name)-\(host.name)", kernel: m.kernel, initrd: m.initrd, cmdline: m.cmdline, disk: m.disk,
                                      memoryMiB: m.memoryMiB, cpus: m.cpus, accel: Accelerator(rawValue: m.accel) ?? .auto, nics: nics,
                                      filesOwner: t.fileOwner.flatMap { $0 == 0 ? nil : $0 })
                    vms.append(VM(tenant: tenant.name, host: host.name, directory: GuestDirectory.path(topology: t.name, host: host.name),
                                  spec: spec, taps: taps))
                } else {
                    namespaces.append(Namespace(name: ns, tag: n.hostTag(tenant: tenant.name, host: host.name)))
                }
                for (vi, v) in host.vnics.enumerated() {
                    let mac: MACAddress?
                    switch v.mac {
                    case .auto: mac = n.autoMAC(tenant: tenant.name, host: host.name, vnic: v.name)
                    case .random: mac = nil
                    case .fixed(let m): mac = m
                    }
                    let dev = n.hostDevice(host: host.name, vnic: v.name)
                    let macvtap = host.vm != nil && v.mode == "macvtap"
                    vnics.append(VNIC(tenant: tenant.name, host: host.name, name: host.vm == nil ? v.name : "eth\(vi)", hostDevice: dev, bridge: lower(v).name,
                                      namespace: ns, mac: mac, mtu: v.mtu ?? t.switches.first { $0.name == v.over }?.mtu,
                                      ips: v.ips, gateway: v.gateway, tag: n.vnicTag(tenant: tenant.name, host: host.name, vnic: v.name),
                                      protection: Set(v.protection.compactMap { ProtectionKind(rawValue: $0.rawValue) }),
                                      allowed: v.allowedIPs.isEmpty
                                        ? v.ips.map { try! IPPrefix(address: $0.address, length: $0.address.bitWidth) } : v.allowedIPs,
                                      isVM: host.vm != nil, isMacvtap: macvtap, linkLocal: host.vm == nil && v.wantsLinkLocal))
                    if v.maxbw != nil || v.floor != nil || !v.flows.isEmpty || tenant.maxbw != nil {
                        // The MAC tells members apart on the tenant's IFBs; a random MAC is
                        // filled in from the kernel before the caps are applied.
                        members.append(CapMember(name: "\(host.name)/\(v.name)", device: try! InterfaceName(validating: dev), mac: mac,
                                                 maxbw: v.maxbw, floor: v.floor, flows: v.flows, burst: v.burst, queueLimit: v.queue,
                                                 facesEndpoint: macvtap))
                    }
                }
            }
            if !members.isEmpty {
                groups.append(CapGroup(name: tenant.name, ifbFrom: try! InterfaceName(validating: n.ifbFrom(tenant: tenant.name)),
                                       ifbTo: try! InterfaceName(validating: n.ifbTo(tenant: tenant.name)), maxbw: tenant.maxbw,
                                       members: members, ownerTag: n.tenantTag(tenant.name), linkGroup: n.group))
            }
        }
        self.namespaces = namespaces
        self.vnics = vnics
        capGroups = groups
        self.vms = vms
    }

    /// The isolation and protection rules, once every VNIC's MAC is known (`macs` fills in the
    /// `mac: random` ones by host device); nil while one is still unknown, or with no VNICs.
    public func ruleset(macs: [String: MACAddress] = [:]) -> Ruleset? {
        guard !vnics.isEmpty else { return nil }
        var ports: [ProtectedPort] = []
        for v in vnics {
            guard let mac = v.mac ?? macs[v.hostDevice] else { return nil }
            // A guest configures its own IPv6 (a link-local address at least); a namespace host
            // speaks it when the file gives it an IPv6 address or a link-local one.
            ports.append(ProtectedPort(device: v.hostDevice, tenant: v.tenant, mac: mac, protection: v.protection, allowed: v.allowed,
                                       attachment: v.isMacvtap ? .macvtap : .bridgePort,
                                       ipv6: v.isVM || v.linkLocal || v.allowed.contains { !$0.address.isV4 }))
        }
        let n = KernelNames(topology)
        return Ruleset(table: n.firewallTable, ownerTag: n.tagPrefix, ports: ports)
    }
}

/// The topology's nftables tables as found in the fabric namespace.
public enum FirewallState: Sendable, Equatable {
    case absent
    /// Quiver's: its comment (owner tag and fingerprint) and how many chains/sets/counters the
    /// tables hold together. A netdev table whose comment differs from the bridge table's (or one
    /// without a bridge table) reads as comment "", which no ruleset has.
    case installed(comment: String, use: UInt32)
    /// A table of that name Quiver did not make.
    case foreign(family: String, comment: String?)

    static func read(_ firewall: Firewall, table: String, ownerTag: String) throws -> FirewallState {
        do {
            let t = try firewall.tables(table, ownerTag: ownerTag)
            if t.bridge == nil && t.netdev == nil { return .absent }
            var comment = t.bridge?.comment ?? ""
            if let n = t.netdev, n.comment != t.bridge?.comment { comment = "" }
            return .installed(comment: comment, use: (t.bridge?.use ?? 0) + (t.netdev?.use ?? 0))
        } catch let e as ForeignTableError {
            return .foreign(family: e.family.name, comment: e.comment)
        }
    }
}

/// What the kernel has now for a topology: read with dumps (one per namespace), never one get per
/// object.
public struct CurrentFabric: Sendable {
    public struct Host: Sendable {
        public var tagged: Bool
        /// The name exists under /var/run/netns but is not a usable namespace (an apply was
        /// killed between creating the file and mounting the namespace on it).
        public var broken = false
        public var links: [Link]
        public var addresses: [Address]
        public var routes: [Route]

        public init(tagged: Bool, links: [Link], addresses: [Address], routes: [Route]) {
            self.tagged = tagged
            self.links = links
            self.addresses = addresses
            self.routes = routes
        }
    }

    /// Every link in the fabric namespace (Quiver's and others').
    public var links: [Link]
    /// The topology's nftables table.
    public var firewall: FirewallState = .absent
    /// Guests with a run directory, by host name (running or not).
    public var vms: [String: VMStatus] = [:]

    /// Interface indexes of the bridges in the fabric namespace.
    public var bridgeIndexes: Set<Int32> {
        Set(links.filter { if case .bridge? = $0.data { return true } else { return false } }.map(\.index))
    }

    /// The MACs the kernel picked for `desired`'s `mac: random` VNICs that exist, by host device.
    public func randomMACs(of desired: DesiredFabric) -> [String: MACAddress] {
        var macs: [String: MACAddress] = [:]
        for v in desired.vnics where v.mac == nil {
            if let m = hosts[v.namespace]?.links.first(where: { $0.name == v.name })?.mac { macs[v.hostDevice] = m }
        }
        return macs
    }
    /// Named namespaces that exist, by name, for those the topology wants or owns.
    public var hosts: [String: Host]
    public init(links: [Link], hosts: [String: Host]) {
        self.links = links
        self.hosts = hosts
    }

    /// Reads the fabric and every existing namespace the topology wants or whose name carries its
    /// prefix. Host namespaces are read through one socket each, opened together on one thread.
    public static func read(topology: String, wanted: [String], fabric: NetlinkHandle,
                            firewall: Firewall, onFabricLinks: (([Link]) -> Void)? = nil) throws -> (CurrentFabric, [String: NetlinkHandle]) {
        let wantedSet = Set(wanted)
        let existing = NetworkNamespace.listNamed().filter { $0.hasPrefix(topology + "-") || wantedSet.contains($0) }
        // The hosts' sockets are opened (a setns each) while the fabric is read.
        let opening = Background { try NetlinkHandle.openEach(namespaces: existing.map(NetworkNamespace.named)) }
        let links = try fabric.links(statistics: false)
        onFabricLinks?(links)
        let names = KernelNames(topology)
        let firewallState = try FirewallState.read(firewall, table: names.firewallTable, ownerTag: names.tagPrefix)
        // Five dumps per host (links, addresses and routes of each family); hosts are read on
        // every core at once.
        let opened = try opening.wait().get()
        let slots = ResultSlots<Host>(count: existing.count)
        DispatchQueue.concurrentPerform(iterations: existing.count) { i in
            guard let h = try? opened[i].get() else {
                var broken = Host(tagged: false, links: [], addresses: [], routes: [])
                broken.broken = true
                slots.set(i, .success(broken))
                return
            }
            slots.set(i, Result {
                let l = try h.links(statistics: false)
                return Host(tagged: names.isOwnHost(links: l), links: l, addresses: try h.addresses(), routes: try h.routes())
            })
        }
        var hosts: [String: Host] = [:]
        var handles: [String: NetlinkHandle] = [:]
        for (i, name) in existing.enumerated() {
            hosts[name] = try slots.get(i)
            if let h = try? opened[i].get() { handles[name] = h }
        }
        var current = CurrentFabric(links: links, hosts: hosts)
        current.firewall = firewallState
        current.vms = try readVMs(topology)
        return (current, handles)
    }
}

/// Every guest recorded under `/run/quiver/vms/T/`, by host. Each directory is checked here, while
/// planning: one Quiver would refuse to start a guest in (a link in it, a file it did not make)
/// stops the apply before anything changes.
func readVMs(_ topology: String) throws -> [String: VMStatus] {
    var out: [String: VMStatus] = [:]
    for host in try GuestDirectory.hosts(topology: topology) {
        let path = GuestDirectory.path(topology: topology, host: host)
        _ = try GuestDirectory.open(path, create: false)
        if let s = VMLauncher.status(directory: path) { out[host] = s }
    }
    return out
}

/// Results written from concurrent workers.
final class ResultSlots<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Result<T, Error>?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); values[i] = r; lock.unlock() }
    func get(_ i: Int) throws -> T { lock.lock(); defer { lock.unlock() }; return try values[i]!.get() }
}
