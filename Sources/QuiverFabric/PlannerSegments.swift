import CNetlink
import QuiverKernel
import QuiverNetlink
import QuiverProtection

extension Planner.Diff {
    /// A node's segments: each VXLAN device made, or kept when it is the one the file says (else
    /// made again), back on its switch with its flags; then the forwarding entries diffed against
    /// what the kernel holds — a VNIC added on another node is one more entry here.
    mutating func segments() {
        var remade = Set<InterfaceName>()
        for b in desired.bridges {
            guard let mac = b.mac, let l = byName[b.name], owned(l), l.mac != mac else { continue }
            ops.append(.changeBridgeMAC(b.name, mac))
            remade.insert(b.name)
        }
        for s in desired.segments {
            guard let l = byName[s.device] else {
                ops.append(.createSegment(s))
                ops.append(.openPort(s.device))
                remade.insert(s.device)
                continue
            }
            guard owned(l) else {
                conflicts.append(Conflict(object: "link \(s.device)", found: foreign(l)))
                continue
            }
            guard case .vxlan(let have)? = l.data, have.vni == s.vni, have.local == s.local, have.learning == false,
                  have.port == UnderlayGuard.port, have.remote == nil else {
                ops.append(.deleteLink(s.device))
                ops.append(.createSegment(s))
                ops.append(.openPort(s.device))
                remade.insert(s.device)
                continue
            }
            if l.alias != s.tag { ops.append(.tagLink(s.device, tag: s.tag)) }
            let port = l.bridgePort
            if l.masterIndex != byName[s.bridge]?.index || l.mtu != s.mtu || port?.learning != false || port?.neighSuppress != true {
                ops.append(.changeSegment(s))
            }
            if !l.isUp { ops.append(.bringUpPort(s.device)) }
        }
        let want = Set(desired.segments.flatMap(\.entries))
        let have = current.forwarding.filter { !remade.contains($0.device) }
        for e in have.subtracting(want).sorted(by: { $0.description < $1.description }) { ops.append(.removeForwarding(e)) }
        for s in desired.segments { for e in s.entries where !have.contains(e) { ops.append(.addForwarding(e)) } }
    }
}

extension CurrentFabric {
    /// The entries Quiver writes that the fabric holds on the topology's segment devices (tagged
    /// `segment/`) and, for the ARP/ND entries, on its bridges: three dumps, made only when the
    /// topology has or wants segments.
    static func forwarding(_ handle: NetlinkHandle, links: [Link], names: KernelNames, wanted: Bool) throws -> Set<DesiredFabric.ForwardingEntry> {
        let ours = links.filter { names.owns($0) }
        let segments = Dictionary(ours.filter { $0.alias?.hasPrefix(names.tagPrefix + "segment/") == true }.compactMap { l in
            (try? InterfaceName(validating: l.name)).map { (l.index, $0) }
        }, uniquingKeysWith: { a, _ in a })
        guard wanted || !segments.isEmpty else { return [] }
        let bridges = Dictionary(ours.filter { if case .bridge? = $0.data { return true } else { return false } }.compactMap { l in
            (try? InterfaceName(validating: l.name)).map { (l.index, $0) }
        }, uniquingKeysWith: { a, _ in a })
        var out = Set<DesiredFabric.ForwardingEntry>()
        for n in try handle.neighbours(family: AF_BRIDGE) {
            if let d = segments[n.ifindex], let e = DesiredFabric.ForwardingEntry(n, device: d), e.kind != .neighbour(IPAddress(0, 0, 0, 0)) { out.insert(e) }
        }
        for family in [AF_INET, AF_INET6] {
            for n in try handle.neighbours(family: family) {
                if let d = bridges[n.ifindex], let e = DesiredFabric.ForwardingEntry(n, device: d) { out.insert(e) }
            }
        }
        return out
    }
}
