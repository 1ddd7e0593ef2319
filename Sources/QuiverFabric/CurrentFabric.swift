import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverTopology
import QuiverVM

/// What the kernel has now for a topology: read with dumps (one per namespace), never one get per
/// object.
package struct CurrentFabric: Sendable {
    package struct Host: Sendable {
        package var tagged: Bool
        /// The name exists under /var/run/netns but is not a usable namespace (an apply was
        /// killed between creating the file and mounting the namespace on it).
        package var broken = false
        package var links: [Link]
        package var addresses: [Address]
        package var routes: [Route]

        package init(tagged: Bool, links: [Link], addresses: [Address], routes: [Route]) {
            self.tagged = tagged
            self.links = links
            self.addresses = addresses
            self.routes = routes
        }
    }

    /// Every link in the fabric namespace (Quiver's and others').
    package var links: [Link]
    /// The topology's nftables table.
    package var firewall: FirewallState = .absent
    /// Guests with a run directory, by host name (running or not).
    package var vms: [String: VMStatus] = [:]
    /// DHCP servers with a run directory, by directory: the configuration a running one was
    /// started with (nil: not running).
    package var dhcp: [String: String?] = [:]
    /// Of the links `read` was asked about (those the file does not cap), the ones that still
    /// carry a clsact qdisc of Quiver's (a cap's redirects).
    package var capped: Set<String> = []
    /// The static forwarding entries on the topology's segment devices and bridges (read only
    /// when it has or wants segments).
    package var forwarding: Set<DesiredFabric.ForwardingEntry> = []

    /// Interface indexes of the bridges in the fabric namespace.
    package var bridgeIndexes: Set<Int32> {
        Set(links.filter { if case .bridge? = $0.data { return true } else { return false } }.map(\.index))
    }

    /// The MACs the kernel picked for `desired`'s `mac: random` VNICs that exist, by host device.
    package func randomMACs(of desired: DesiredFabric) -> [InterfaceName: MACAddress] {
        var macs: [InterfaceName: MACAddress] = [:]
        for v in desired.vnics where v.mac == nil {
            if let m = hosts[v.namespace]?.links.first(where: { $0.name == v.name.rawValue })?.mac { macs[v.hostDevice] = m }
        }
        return macs
    }
    /// Named namespaces that exist, by name, for those the topology wants or owns.
    package var hosts: [String: Host]
    package init(links: [Link], hosts: [String: Host]) {
        self.links = links
        self.hosts = hosts
    }

    /// Reads the fabric and every existing namespace the topology wants or whose name carries its
    /// prefix. Host namespaces are read through one socket each, opened together on one thread.
    /// `uncapped`: fabric links the file does not cap; which of them carry caps is read (a qdisc
    /// dump) only when there are any.
    package static func read(topology: String, node: String? = nil, guestsElsewhere: Set<String> = [], wanted: [String], uncapped: Set<String> = [], fabric: NetlinkHandle,
                             firewall: Firewall, onFabricLinks: (([Link]) -> Void)? = nil) throws -> (CurrentFabric, [String: NetlinkHandle]) {
        let wantedSet = Set(wanted)
        let existing = NetworkNamespace.listNamed().filter { $0.hasPrefix(topology + "-") || wantedSet.contains($0) }
        // The hosts' sockets are opened (a setns each) while the fabric is read.
        let opening = Background { try NetlinkHandle.openEach(namespaces: existing.map(NetworkNamespace.named)) }
        let links = try fabric.links(statistics: false)
        onFabricLinks?(links)
        // Which of them carry caps, read beside the hosts.
        let qdiscs = uncapped.isEmpty ? nil : Background { try fabric.qdiscs() }
        let names = KernelNames(topology, node: node)
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
        let byIndex = Dictionary(links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        current.capped = Set(try qdiscs?.wait().get().filter { CapGroup.isQuiverClsact($0.kind) }.compactMap { byIndex[$0.ifindex] } ?? [])
        // (Guests the file places on other nodes are theirs: nodes that share a host, as in tests.)
        current.vms = try readVMs(try TopologyName(validating: topology)).filter { !guestsElsewhere.contains($0.key) }
        for d in DHCPServer.directories(topology: try TopologyName(validating: topology)) {
            // `.some`: a server that is not running stays in the table (as nil), so it is replaced.
            current.dhcp[d] = .some(DHCPServer.running(directory: d, namespace: DHCPServer.namespace(ofDirectory: d, topology: topology) ?? "").map(\.config))
        }
        return (current, handles)
    }
}

/// Every guest recorded under `/run/quiver/vms/T/`, by host. Each directory is checked here, while
/// planning: one Quiver would refuse to start a guest in (a link in it, a file it did not make)
/// stops the apply before anything changes.
func readVMs(_ topology: TopologyName) throws -> [String: VMStatus] {
    var out: [String: VMStatus] = [:]
    for host in try GuestDirectory.hosts(topology: topology) {
        let path = GuestDirectory.path(topology: topology, host: host)
        _ = try GuestDirectory.open(path, create: false)
        if let s = VMLauncher.status(directory: path) { out[host.rawValue] = s }
    }
    return out
}
