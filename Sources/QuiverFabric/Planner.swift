import QuiverBandwidth
import QuiverKernel
import QuiverProtection
import QuiverTopology
import QuiverVM

/// The pure diff from what the kernel has to what the file wants.
package enum Planner {
    /// - Parameters:
    ///   - pendingNamespaces: namespaces the journal says an earlier apply was creating (they may
    ///     exist untagged after a crash; they are ours).
    ///   - pendingLinks: fabric links the journal says an earlier apply was creating (they may
    ///     exist in the topology's link group without their tag after a crash; they are ours).
    ///
    /// A fabric link is the topology's only when it is in the topology's link group *and* carries
    /// its tag (`ifalias` `quiver:T/...`) — or carries no tag at all and the journal names it. The
    /// group alone proves nothing: it is a 24-bit hash of the name, which other names share.
    package static func plan(current: CurrentFabric, desired: DesiredFabric, pendingNamespaces: Set<String> = [],
                            pendingLinks: Set<String> = []) -> Plan {
        var diff = Diff(current: current, desired: desired, pendingNamespaces: pendingNamespaces, pendingLinks: pendingLinks)
        diff.sharedLinkGroup()
        diff.namespaces()
        diff.switches()
        diff.segments()
        diff.guests()
        diff.dhcpServers()
        for v in desired.vnics where !v.isVM { diff.vnic(v) }
        diff.fabricLinkLocal()
        diff.caps()
        diff.rules()
        diff.dropped()
        return diff.plan()
    }

    /// One diff in progress: what it compares, and the steps and conflicts found so far.
    struct Diff {
        let current: CurrentFabric
        let desired: DesiredFabric
        let pendingNamespaces: Set<String>
        let pendingLinks: Set<String>
        let names: KernelNames
        /// The fabric's links by name (a link whose name Quiver could not have given is no one's
        /// it could be asked to make, nor one it owns).
        let byName: [InterfaceName: Link]
        var ops: [Operation] = []
        var conflicts: [Conflict] = []

        init(current: CurrentFabric, desired: DesiredFabric, pendingNamespaces: Set<String>, pendingLinks: Set<String>) {
            self.current = current
            self.desired = desired
            self.pendingNamespaces = pendingNamespaces
            self.pendingLinks = pendingLinks
            names = desired.names
            byName = Dictionary(current.links.compactMap { l in (try? InterfaceName(validating: l.name)).map { ($0, l) } },
                                uniquingKeysWith: { a, _ in a })
        }

        func owned(_ l: Link) -> Bool { names.owns(l, pending: pendingLinks) }

        func foreign(_ l: Link) -> String {
            "a \(l.linkClass) in link group 0x\(String(l.group, radix: 16))" + (l.alias.map { ", alias \(InvalidValue.quoted($0))" } ?? ", no alias")
        }

        /// The link group is shared by another topology (its name hashes to the same group): the
        /// two cannot both live in this fabric — destroy deletes a topology's links by group.
        mutating func sharedLinkGroup() {
            let sharers = Set(current.links.filter { $0.group == desired.group }.compactMap { l -> String? in
                guard let tag = l.alias, !tag.hasPrefix(names.tagPrefix), let other = KernelNames.topology(ofTag: tag) else { return nil }
                return other
            })
            for other in sharers.sorted() {
                conflicts.append(Conflict(object: "link group 0x\(String(desired.group, radix: 16)) of topology \(desired.topology)",
                                          found: "topology \(other)'s links are in it: the two names hash to the same group; rename one of the topologies"))
            }
        }

        /// A host's namespace: made, tagged (one an interrupted apply made), or — not usable —
        /// made again; one of the name that is not the topology's is a conflict.
        mutating func namespaces() {
            for ns in desired.namespaces {
                if let h = current.hosts[ns.name.rawValue] {
                    let ours = h.tagged || pendingNamespaces.contains(ns.name.rawValue)
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
        }

        /// Switches: made, or retagged when their tag is missing or stale.
        mutating func switches() {
            for b in desired.bridges {
                if let l = byName[b.name] {
                    if !owned(l) { conflicts.append(Conflict(object: "link \(b.name)", found: foreign(l))) } else if l.alias != b.tag { ops.append(.tagLink(b.name, tag: b.tag)) }
                } else {
                    ops.append(.createBridge(b))
                }
            }
        }

        /// DHCP servers: running with the same configuration, or (re)started; Quiver's apply is
        /// what brings back one that died. One the file no longer asks for is stopped.
        mutating func dhcpServers() {
            for s in desired.dhcpServers {
                if let have = current.dhcp[s.directory] {
                    if have == s.config { continue }
                    ops.append(.stopDHCP(directory: s.directory, namespace: s.namespace))
                }
                ops.append(.startDHCP(s))
            }
            for d in current.dhcp.keys.sorted() where !desired.dhcpServers.contains(where: { $0.directory == d }) {
                ops.append(.stopDHCP(directory: d, namespace: DHCPServer.namespace(ofDirectory: d, topology: desired.topology) ?? ""))
            }
        }

        /// VM hosts: running with the same spec and their NICs in place, or (re)started.
        mutating func guests() {
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
                if !running, have != nil, !vm.startIfStopped { continue }
                if running, tapsOK, have?.record.spec == vm.spec {
                    // NICs found down (an apply killed before its last phase) come up.
                    for t in vm.taps where byName[t.name]?.isUp == false { ops.append(.bringUpPort(t.name)) }
                    continue
                }
                if have != nil { ops.append(.stopVM(host: vm.host)) }
                // Its NICs are made down with the other links, capped and protected before qemu
                // starts, and come up with the other ports.
                ops.append(.createGuestNICs(host: vm.host, nics: vm.taps.map(\.name)))
                ops.append(.startVM(host: vm.host))
                for t in vm.taps { ops.append(.openPort(t.name)) }
            }
            for host in current.vms.keys.sorted() where !desired.vms.contains(where: { $0.host == host }) {
                ops.append(.stopVM(host: host))
            }
        }

        /// A new VNIC: its endpoint is made up in its namespace, without an IPv6 link-local address
        /// unless it is to have one, gets its addresses and route, and its port comes up at the
        /// very end.
        mutating func create(_ v: DesiredFabric.VNIC) {
            ops.append(.createVNIC(v))
            if !v.linkLocal { ops.append(.quietEndpoint(namespace: v.namespace, device: v.name)) }
            for p in v.ips { ops.append(.addAddress(namespace: v.namespace, device: v.name, p)) }
            if let g = v.gateway { ops.append(.setGateway(namespace: v.namespace, device: v.name, g)) }
            ops.append(.openPort(v.hostDevice))
        }

        /// A VNIC of a namespace host: made, or its port kept (retagged, moved), then its endpoint.
        mutating func vnic(_ v: DesiredFabric.VNIC) {
            guard let l = byName[v.hostDevice] else {
                // A veth end goes with its peer, so a link of the endpoint's name in the host
                // without the port is someone else's.
                if let h = current.hosts[v.namespace], !h.broken, let other = h.links.first(where: { $0.name == v.name.rawValue }) {
                    conflicts.append(Conflict(object: "link \(v.name) in network namespace \(v.namespace)",
                                              found: "a \(other.linkClass) without the port \(v.hostDevice)"))
                } else {
                    create(v)
                }
                return
            }
            guard owned(l) else {
                conflicts.append(Conflict(object: "link \(v.hostDevice)", found: foreign(l)))
                return
            }
            if l.alias != v.tag { ops.append(.tagLink(v.hostDevice, tag: v.tag)) }
            let bridgeIndex = byName[v.bridge]?.index
            let wantMTU = v.mtu.flatMap { $0 != l.mtu ? $0 : nil }
            if l.masterIndex != bridgeIndex || wantMTU != nil {
                ops.append(.changeVNIC(hostDevice: v.hostDevice, bridge: l.masterIndex != bridgeIndex ? v.bridge : nil, mtu: wantMTU))
                // A port that changes switch is down until its rules and caps are in again.
                if l.masterIndex != bridgeIndex { ops.append(.openPort(v.hostDevice)) }
            }
            guard let host = current.hosts[v.namespace], !host.broken, let peer = host.links.first(where: { $0.name == v.name.rawValue }) else {
                // The host side exists but its endpoint is gone (namespace lost): re-create both.
                ops.append(.deleteLink(v.hostDevice))
                create(v)
                return
            }
            // Ports come up last in an apply; one found down (an apply killed before that) is
            // brought up with the endpoints.
            if !l.isUp { ops.append(.bringUpPort(v.hostDevice)) }
            endpoint(v, peer, in: host)
        }

        /// An existing endpoint: its MAC, IPv6 link-local mode, state, addresses and default route.
        mutating func endpoint(_ v: DesiredFabric.VNIC, _ peer: Link, in host: CurrentFabric.Host) {
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
            if let g = v.gateway, !defaults.contains(where: { $0.gateway == g }) {
                ops.append(.setGateway(namespace: v.namespace, device: v.name, g))
            }
            for gateway in defaults.compactMap(\.gateway) where gateway != v.gateway {
                ops.append(.removeGateway(namespace: v.namespace, gateway))
            }
        }

        /// Fabric links the topology keeps have no IPv6 link-local address (links made by an older
        /// Quiver, or by an apply interrupted before it set their mode, get it now). Guests' NICs
        /// are made that way.
        mutating func fabricLinkLocal() {
            for name in desired.fabricLinkNames {
                if let l = byName[name], owned(l), l.ipv6LinkLocal == true { ops.append(.setLinkLocal(namespace: nil, device: name, on: false)) }
            }
        }

        /// Caps: the shaper diffs them itself (no-op when unchanged). An IFB left untagged by an
        /// interrupted apply gets its tag first (the shaper takes only tagged IFBs as its own).
        mutating func caps() {
            for g in desired.capGroups {
                for ifb in [g.ifbFrom, g.ifbTo] {
                    if let l = byName[ifb] {
                        if !owned(l) { conflicts.append(Conflict(object: "link \(ifb)", found: foreign(l))) } else if l.alias != g.ownerTag { ops.append(.tagLink(ifb, tag: g.ownerTag)) }
                    }
                }
            }
            let wantedCaps = Set(desired.capGroups.map(\.name))
            for g in desired.capGroups {
                for ifb in [g.ifbFrom, g.ifbTo] where byName[ifb] == nil { ops.append(.createIFB(ifb)) }
                ops.append(.applyCaps(tenant: g.name))
            }
            let tenantTags = current.links.filter { owned($0) && $0.alias?.hasPrefix(names.tagPrefix + "tenant/") == true }
            let removedCaps = Set(tenantTags.compactMap { $0.alias?.split(separator: "/").last.map(String.init) }).subtracting(wantedCaps)
            for t in removedCaps.sorted() { ops.append(.removeCaps(tenant: t)) }
            // VNICs no longer capped lose their redirects (those of a tenant whose caps go, with them).
            let capped = Set(desired.capGroups.flatMap { $0.members.map(\.device) })
            for v in desired.vnics where !capped.contains(v.hostDevice) && current.capped.contains(v.hostDevice.rawValue) {
                let alias = byName[v.hostDevice]?.alias ?? ""
                if !removedCaps.contains(where: { alias.hasPrefix(names.tagPrefix + "vnic/\($0)/") }) { ops.append(.uncap(v.hostDevice)) }
            }
        }

        /// Isolation and protection: one table, replaced whole when its fingerprint differs.
        mutating func rules() {
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
        }

        /// Owned links and namespaces the file no longer has.
        mutating func dropped() {
            let wanted = Set(desired.namespaces.map(\.name.rawValue))
            let wantedLinks = Set(desired.bridges.map(\.name) + desired.vnics.map(\.hostDevice) + desired.capGroups.flatMap { [$0.ifbFrom, $0.ifbTo] }
                                  + desired.segments.map(\.device))
            for (name, l) in byName.sorted(by: { $0.value.index < $1.value.index }) where owned(l) && !wantedLinks.contains(name) {
                if l.alias?.hasPrefix(names.tagPrefix + "tenant/") == true { continue } // removed with its caps
                ops.append(.deleteLink(name))
            }
            // (A namespace of a name Quiver could not have given is not the topology's.)
            for (name, h) in current.hosts.sorted(by: { $0.key < $1.key }) where !wanted.contains(name) && (h.tagged || pendingNamespaces.contains(name)) {
                if let n = try? NamespaceName(validating: name) { ops.append(.deleteNamespace(n)) }
            }
        }

        /// The steps in their phases. A host whose endpoint was found down gets its routes once
        /// it is up again. The rules go in from the start unless they name the MAC the kernel is
        /// yet to pick for a `mac: random` VNIC this apply makes.
        func plan() -> Plan {
            let comingUp = Set(ops.compactMap { if case .bringUp(let ns, _) = $0 { return ns } else { return nil } })
            let picksMAC = ops.contains { if case .createVNIC(let v) = $0 { return v.mac == nil } else { return false } }
            return Plan(steps: ops, conflicts: conflicts) { op in
                switch op {
                case .setGateway(let ns, _, _), .removeGateway(let ns, _): return comingUp.contains(ns) ? .portsUp : op.phase
                case .installProtection: return picksMAC ? .rulesAfterVNICs : .rules
                default: return op.phase
                }
            }
        }
    }
}
