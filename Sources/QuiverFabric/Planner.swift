import QuiverBandwidth
import QuiverKernel
import QuiverProtection
import QuiverTopology

/// One step of an apply or destroy.
public enum Operation: Sendable, Equatable, CustomStringConvertible {
    case createNamespace(String)
    /// Bring `lo` up and tag it (an interrupted apply made the namespace but not this).
    case tagNamespace(String)
    /// Bring a VNIC's endpoint side up.
    case bringUp(namespace: String, device: String)
    /// Bring a VNIC's fabric side (its switch port) up.
    case bringUpPort(String)
    case createBridge(DesiredFabric.Bridge)
    case createVNIC(DesiredFabric.VNIC)
    /// Plug a VNIC's host side into another switch / change its MTU.
    case changeVNIC(hostDevice: String, bridge: String?, mtu: UInt32?)
    /// Set the endpoint side's MAC (a fixed MAC edited in the file).
    case changeMAC(namespace: String, device: String, mac: MACAddress)
    /// Give a link an IPv6 link-local address or not (`addrgenmode`); namespace nil: the fabric.
    case setLinkLocal(namespace: String?, device: String, on: Bool)
    case addAddress(namespace: String, device: String, IPPrefix)
    case removeAddress(namespace: String, device: String, IPPrefix)
    case setGateway(namespace: String, device: String, IPAddress)
    case removeGateway(namespace: String, IPAddress)
    case applyCaps(tenant: String)
    case removeCaps(tenant: String)
    /// Open a VM host's taps, plug them in, start qemu with them.
    case startVM(host: String)
    /// Stop a guest (QMP powerdown, quit, then SIGKILL) and remove its run directory.
    case stopVM(host: String)
    /// Install (or atomically replace) the topology's isolation and protection table.
    case installProtection(replacing: Bool)
    case removeProtection
    case deleteLink(String)
    case deleteNamespace(String)
    /// Write the owner tag (`ifalias`) of a link the topology owns but whose tag is missing (an
    /// apply interrupted between creating it and tagging it: the journal names it) or stale (its
    /// VNIC moved to another tenant).
    case tagLink(String, tag: String)

    public var description: String {
        switch self {
        case .createNamespace(let n): return "create namespace \(n)"
        case .tagNamespace(let n): return "tag namespace \(n)"
        case .bringUp(let ns, let d): return "bring \(d) up in \(ns)"
        case .bringUpPort(let d): return "bring \(d) up"
        case .createBridge(let b): return "create switch \(b.name)"
        case .createVNIC(let v): return "create vnic \(v.host)/\(v.name) (\(v.hostDevice) on \(v.bridge))"
        case .changeVNIC(let d, let b, let m):
            return "change vnic \(d):" + (b.map { " switch → \($0)" } ?? "") + (m.map { " mtu → \($0)" } ?? "")
        case .changeMAC(let ns, let d, let m): return "change mac of \(d) in \(ns) → \(m)"
        case .setLinkLocal(let ns, let d, let on):
            return "turn IPv6 link-local \(on ? "on" : "off") on \(d)" + (ns.map { " in \($0)" } ?? "")
        case .addAddress(let ns, let d, let p): return "add address \(p) to \(d) in \(ns)"
        case .removeAddress(let ns, let d, let p): return "remove address \(p) from \(d) in \(ns)"
        case .setGateway(let ns, let d, let g): return "set default route via \(g) dev \(d) in \(ns)"
        case .removeGateway(let ns, let g): return "remove default route via \(g) in \(ns)"
        case .applyCaps(let t): return "apply caps of tenant \(t)"
        case .removeCaps(let t): return "remove caps of tenant \(t)"
        case .startVM(let h): return "start vm \(h)"
        case .stopVM(let h): return "stop vm \(h)"
        case .installProtection(let r): return (r ? "replace" : "install") + " isolation and protection rules"
        case .removeProtection: return "remove isolation and protection rules"
        case .deleteLink(let l): return "delete link \(l)"
        case .deleteNamespace(let n): return "delete namespace \(n)"
        case .tagLink(let l, let tag): return "tag link \(l) \(tag)"
        }
    }

    /// For the summary line.
    public var verb: Verb {
        switch self {
        case .createNamespace, .createBridge, .createVNIC, .addAddress, .setGateway, .startVM: return .create
        case .installProtection(let replacing): return replacing ? .change : .create
        case .changeVNIC, .changeMAC, .applyCaps, .tagNamespace, .bringUp, .bringUpPort, .setLinkLocal, .tagLink: return .change
        case .removeAddress, .removeGateway, .removeCaps, .deleteLink, .deleteNamespace, .removeProtection, .stopVM: return .delete
        }
    }

    public enum Verb { case create, change, delete }
}

/// An object in the kernel with a name the topology wants, that the topology does not own.
public struct Conflict: Error, Sendable, Equatable, CustomStringConvertible {
    public var object: String
    public var found: String
    public var description: String {
        "\(object) already exists and was not created by Quiver for this topology (\(found)); it is left alone — remove or rename it, or rename the topology"
    }
}

/// A plan: ordered operations, or the conflicts that forbid applying.
public struct Plan: Sendable, Equatable {
    public var operations: [Operation]
    public var conflicts: [Conflict]

    public var isEmpty: Bool { operations.isEmpty }
}

/// The pure diff from what the kernel has to what the file wants.
public enum Planner {
    /// - Parameters:
    ///   - pendingNamespaces: namespaces the journal says an earlier apply was creating (they may
    ///     exist untagged after a crash; they are ours).
    ///   - pendingLinks: fabric links the journal says an earlier apply was creating (they may
    ///     exist in the topology's link group without their tag after a crash; they are ours).
    ///
    /// A fabric link is the topology's only when it is in the topology's link group *and* carries
    /// its tag (`ifalias` `quiver:T/...`) — or carries no tag at all and the journal names it. The
    /// group alone proves nothing: it is a 24-bit hash of the name, which other names share.
    public static func plan(current: CurrentFabric, desired: DesiredFabric, pendingNamespaces: Set<String> = [],
                            pendingLinks: Set<String> = []) -> Plan {
        var ops: [Operation] = []
        var conflicts: [Conflict] = []
        let names = KernelNames(desired.topology)
        let byName = Dictionary(current.links.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        func owned(_ l: Link) -> Bool { names.owns(l, pending: pendingLinks) }
        func foreign(_ l: Link) -> String {
            "a \(l.linkClass) in link group 0x\(String(l.group, radix: 16))" + (l.alias.map { ", alias \(InvalidValue.quoted($0))" } ?? ", no alias")
        }

        // The link group is shared by another topology (its name hashes to the same group): the
        // two cannot both live in this fabric — destroy deletes a topology's links by group.
        let sharers = Set(current.links.filter { $0.group == desired.group }.compactMap { l -> String? in
            guard let tag = l.alias, !tag.hasPrefix(names.tagPrefix), let other = KernelNames.topology(ofTag: tag) else { return nil }
            return other
        })
        for other in sharers.sorted() {
            conflicts.append(Conflict(object: "link group 0x\(String(desired.group, radix: 16)) of topology \(desired.topology)",
                                      found: "topology \(other)'s links are in it: the two names hash to the same group; rename one of the topologies"))
        }

        // Namespaces.
        let wantedNS = Set(desired.namespaces.map(\.name))
        for ns in desired.namespaces {
            if let h = current.hosts[ns.name] {
                let ours = h.tagged || pendingNamespaces.contains(ns.name)
                if !ours {
                    conflicts.append(Conflict(object: "network namespace \(ns.name)",
                                              found: h.broken ? "it is not a usable namespace" : "its lo carries no Quiver tag"))
                } else if h.broken {
                    ops.append(.deleteNamespace(ns.name))
                    ops.append(.createNamespace(ns.name))
                } else if !h.tagged {
                    ops.append(.tagNamespace(ns.name))
                }
            } else {
                ops.append(.createNamespace(ns.name))
            }
        }

        // Switches.
        for b in desired.bridges {
            if let l = byName[b.name] {
                if !owned(l) { conflicts.append(Conflict(object: "link \(b.name)", found: foreign(l))) } else if l.alias != b.tag { ops.append(.tagLink(b.name, tag: b.tag)) }
            } else {
                ops.append(.createBridge(b))
            }
        }

        // VM hosts: running with the same spec and their taps in place, or (re)started.
        for vm in desired.vms {
            let have = current.vms[vm.host]
            let running = have.map { $0.state != "stopped" } ?? false
            // Each NIC is the topology's, of the kind the file says, on the right switch (a
            // macvtap over the bridge device, a tap plugged into it); else the guest restarts.
            let tapsOK = vm.taps.allSatisfy { t in
                guard let l = byName[t.name], owned(l), let br = byName[t.bridge]?.index else { return false }
                if t.macvtap { if case .macvtap(let m)? = l.data { return m.lowerIndex == br && m.mode == .bridge } else { return false } }
                if case .tun? = l.data { return l.masterIndex == br } else { return false }
            }
            for t in vm.taps {
                guard let l = byName[t.name] else { continue }
                if !owned(l) { conflicts.append(Conflict(object: "link \(t.name)", found: foreign(l))) } else if l.alias != t.tag { ops.append(.tagLink(t.name, tag: t.tag)) }
            }
            if running, tapsOK, have?.record.spec == vm.spec { continue }
            if have != nil { ops.append(.stopVM(host: vm.host)) }
            ops.append(.startVM(host: vm.host))
        }
        for host in current.vms.keys.sorted() where !desired.vms.contains(where: { $0.host == host }) {
            ops.append(.stopVM(host: host))
        }

        // VNICs.
        for v in desired.vnics where !v.isVM {
            guard let l = byName[v.hostDevice] else {
                // A veth end goes with its peer, so a link of the endpoint's name in the host
                // without the port is someone else's.
                if let h = current.hosts[v.namespace], !h.broken, let other = h.links.first(where: { $0.name == v.name }) {
                    conflicts.append(Conflict(object: "link \(v.name) in network namespace \(v.namespace)",
                                              found: "a \(other.linkClass) without the port \(v.hostDevice)"))
                    continue
                }
                ops.append(.createVNIC(v))
                for p in v.ips { ops.append(.addAddress(namespace: v.namespace, device: v.name, p)) }
                if let g = v.gateway { ops.append(.setGateway(namespace: v.namespace, device: v.name, g)) }
                continue
            }
            guard owned(l) else {
                conflicts.append(Conflict(object: "link \(v.hostDevice)", found: foreign(l)))
                continue
            }
            if l.alias != v.tag { ops.append(.tagLink(v.hostDevice, tag: v.tag)) }
            let bridgeIndex = byName[v.bridge]?.index
            let wantMTU = v.mtu.flatMap { $0 != l.mtu ? $0 : nil }
            if l.masterIndex != bridgeIndex || wantMTU != nil {
                ops.append(.changeVNIC(hostDevice: v.hostDevice, bridge: l.masterIndex != bridgeIndex ? v.bridge : nil, mtu: wantMTU))
            }
            guard let host = current.hosts[v.namespace], !host.broken, let peer = host.links.first(where: { $0.name == v.name }) else {
                // The host side exists but its endpoint is gone (namespace lost): re-create both.
                ops.append(.deleteLink(v.hostDevice))
                ops.append(.createVNIC(v))
                for p in v.ips { ops.append(.addAddress(namespace: v.namespace, device: v.name, p)) }
                if let g = v.gateway { ops.append(.setGateway(namespace: v.namespace, device: v.name, g)) }
                continue
            }
            // Ports come up last in an apply; one found down (an apply killed before that) is
            // brought up with the endpoints.
            if !l.isUp { ops.append(.bringUpPort(v.hostDevice)) }
            if let mac = v.mac, peer.mac != mac { ops.append(.changeMAC(namespace: v.namespace, device: v.name, mac: mac)) }
            if let on = peer.ipv6LinkLocal, on != v.linkLocal {
                // The mode alone changes nothing on a link that is up: the address goes or comes
                // with it (the one the kernel would have made, from the MAC).
                ops.append(.setLinkLocal(namespace: v.namespace, device: v.name, on: v.linkLocal))
                let linkLocals = host.addresses.filter { $0.linkIndex == peer.index && $0.isIPv6LinkLocal }
                if v.linkLocal {
                    if linkLocals.isEmpty, let mac = v.mac ?? peer.mac { ops.append(.addAddress(namespace: v.namespace, device: v.name, mac.ipv6LinkLocal)) }
                } else {
                    for a in linkLocals { ops.append(.removeAddress(namespace: v.namespace, device: v.name, a.prefix)) }
                }
            }
            if !peer.isUp { ops.append(.bringUp(namespace: v.namespace, device: v.name)) }
            let have = Set(host.addresses.filter { $0.linkIndex == peer.index && ($0.prefix.address.isV4 || $0.scope == 0) }.map(\.prefix))
            for p in v.ips where !have.contains(p) { ops.append(.addAddress(namespace: v.namespace, device: v.name, p)) }
            for p in have.subtracting(v.ips).sorted(by: { $0.description < $1.description }) {
                ops.append(.removeAddress(namespace: v.namespace, device: v.name, p))
            }
            let defaults = host.routes.filter { $0.destination == nil && $0.outputIndex == peer.index }
            if let g = v.gateway {
                if !defaults.contains(where: { $0.gateway == g }) { ops.append(.setGateway(namespace: v.namespace, device: v.name, g)) }
            }
            for r in defaults where r.gateway != nil && r.gateway != v.gateway {
                ops.append(.removeGateway(namespace: v.namespace, r.gateway!))
            }
        }

        // Fabric links the topology keeps have no IPv6 link-local address (links made by an older
        // Quiver, or by an apply interrupted before it set their mode, get it now). Guests' taps
        // are made that way when their guest starts.
        for name in desired.fabricLinkNames {
            if let l = byName[name], owned(l), l.ipv6LinkLocal == true { ops.append(.setLinkLocal(namespace: nil, device: name, on: false)) }
        }

        // Caps: the shaper diffs them itself (no-op when unchanged). An IFB left untagged by an
        // interrupted apply gets its tag first (the shaper takes only tagged IFBs as its own).
        for g in desired.capGroups {
            for ifb in [g.ifbFrom.rawValue, g.ifbTo.rawValue] {
                if let l = byName[ifb] {
                    if !owned(l) { conflicts.append(Conflict(object: "link \(ifb)", found: foreign(l))) } else if l.alias != g.ownerTag { ops.append(.tagLink(ifb, tag: g.ownerTag)) }
                }
            }
        }
        let wantedCaps = Set(desired.capGroups.map(\.name))
        for g in desired.capGroups { ops.append(.applyCaps(tenant: g.name)) }
        let tenantTags = current.links.filter { owned($0) && $0.alias?.hasPrefix(names.tagPrefix + "tenant/") == true }
        for t in Set(tenantTags.compactMap { $0.alias?.split(separator: "/").last.map(String.init) }).sorted() where !wantedCaps.contains(t) {
            ops.append(.removeCaps(tenant: t))
        }

        // Isolation and protection: one table, replaced whole when its fingerprint differs.
        switch current.firewall {
        case .foreign(let family, let comment):
            conflicts.append(Conflict(object: "nftables table \(family) \(names.firewallTable)",
                                      found: "comment " + (comment.map { "\"\($0)\"" } ?? "none")))
        case .absent, .installed:
            let macs = current.randomMACs(of: desired)
            let installed: (comment: String, use: UInt32)?
            if case .installed(let c, let u) = current.firewall { installed = (c, u) } else { installed = nil }
            if desired.vnics.isEmpty {
                if installed != nil { ops.append(.removeProtection) }
            } else if let r = desired.ruleset(macs: macs), let have = installed {
                if have.comment != r.comment || have.use != r.expectedUse {
                    ops.append(.installProtection(replacing: true))
                }
            } else {
                // Absent, or a `mac: random` VNIC whose MAC the kernel has not picked yet.
                ops.append(.installProtection(replacing: installed != nil))
            }
        }

        // Owned links the file no longer has.
        let wantedLinks = Set(desired.bridges.map(\.name) + desired.vnics.map(\.hostDevice)
                              + desired.capGroups.flatMap { [$0.ifbFrom.rawValue, $0.ifbTo.rawValue] })
        for l in current.links where owned(l) && !wantedLinks.contains(l.name) {
            if l.alias?.hasPrefix(names.tagPrefix + "tenant/") == true { continue } // removed with its caps
            ops.append(.deleteLink(l.name))
        }
        // Owned namespaces the file no longer has.
        for (name, h) in current.hosts.sorted(by: { $0.key < $1.key }) where !wantedNS.contains(name) && (h.tagged || pendingNamespaces.contains(name)) {
            ops.append(.deleteNamespace(name))
        }
        return Plan(operations: order(ops), conflicts: conflicts)
    }

    /// Deletions of caps and links first (they may free names), then creations in dependency
    /// order, then changes, caps last.
    static func order(_ ops: [Operation]) -> [Operation] {
        func rank(_ o: Operation) -> Int {
            switch o {
            case .stopVM: return 0
            case .removeCaps: return 0
            case .deleteLink: return 1
            case .deleteNamespace: return 2
            case .createNamespace: return 3
            case .tagNamespace: return 4
            case .createBridge: return 4
            case .changeVNIC, .tagLink: return 5
            case .createVNIC: return 6
            case .startVM: return 6
            case .changeMAC, .bringUp, .bringUpPort, .setLinkLocal: return 7
            case .removeAddress: return 8
            case .addAddress: return 9
            case .removeGateway: return 10
            case .setGateway: return 11
            case .applyCaps: return 12
            case .installProtection, .removeProtection: return 13
            }
        }
        return ops.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
    }
}
