import Foundation
import QuiverKernel
import QuiverNetlink

/// Phase `hosts`: inside each host, link modes, MACs, addresses and default routes.
extension ApplyRun {
    /// One pipelined batch per host (in the phase's order: modes and MACs, old addresses, new
    /// ones, old routes, new ones — so a host is never without a route). New endpoints are up
    /// but have no carrier: their ports stay down until caps and rules are in place. Fabric
    /// links whose IPv6 link-local mode changes go in one batch of their own.
    func configureHosts(_ steps: [Operation]) throws {
        var perHost: [String: [NetlinkRequest]] = [:]
        var quietFabricLinks: [InterfaceName] = []
        for o in steps {
            if case .setLinkLocal(nil, let dev, _) = o {
                quietFabricLinks.append(dev)
            } else if let (ns, request) = try hostRequest(o) {
                perHost[ns, default: []].append(request)
            }
            count(o)
        }
        for (ns, requests) in perHost.sorted(by: { $0.key < $1.key }) {
            try host(ns).perform(requests)
            tick(requests.count)
        }
        try removeLinkLocal(from: quietFabricLinks)
    }

    /// The request a host step sends, and the host it goes to.
    func hostRequest(_ o: Operation) throws -> (String, NetlinkRequest)? {
        switch o {
        case .quietEndpoint(let ns, let dev):
            guard let mode = LinkSettings.noLinkLocal else { return nil }
            return (ns, LinkRequest.change(dev, LinkSettings(ipv6LinkLocal: mode)))
        case .setLinkLocal(let ns?, let dev, let on):
            return (ns, LinkRequest.change(dev, LinkSettings(ipv6LinkLocal: on)))
        case .changeMAC(let ns, let dev, let mac):
            return (ns, LinkRequest.change(dev, LinkSettings(mac: mac)))
        case .bringUp(let ns, let dev):
            return (ns, LinkRequest.change(dev, LinkSettings(up: true)))
        case .addAddress(let ns, let dev, let p):
            return (ns, AddressRequest.add(p, linkIndex: try hostIndex(ns, dev), linkName: dev.rawValue, replace: true))
        case .removeAddress(let ns, let dev, let p):
            return (ns, AddressRequest.delete(p, linkIndex: try hostIndex(ns, dev), linkName: dev.rawValue))
        case .setGateway(let ns, let dev, let g):
            // A route needs its device up: new endpoints are; one found down comes up first, in
            // the same batch (the planner puts both in the ports-up phase).
            return (ns, RouteRequest.add(Route(destination: nil, gateway: g, outputIndex: try hostIndex(ns, dev)), replace: true))
        case .removeGateway(let ns, let g):
            return (ns, RouteRequest.delete(Route(destination: nil, gateway: g)))
        default:
            return nil
        }
    }

    /// The interface index of `device` in host `ns`: from the links read while planning, unless
    /// this apply made it (then the host's links are read once).
    private func hostIndex(_ ns: String, _ device: InterfaceName) throws -> Int32 {
        if let i = hostIndexes[ns]?[device.rawValue] ?? current.hosts[ns]?.links.first(where: { $0.name == device.rawValue })?.index { return i }
        if hostIndexes[ns] == nil {
            hostIndexes[ns] = Dictionary(try host(ns).links(statistics: false).map { ($0.name, $0.index) }, uniquingKeysWith: { a, _ in a })
        }
        guard let i = hostIndexes[ns]?[device.rawValue] else { throw missing("configure", device.rawValue, "\(device) missing in netns \(ns)") }
        return i
    }

    /// Fabric links made before they were given no IPv6 link-local address (an older Quiver, or
    /// an apply interrupted between creating a link and setting its mode): the mode, then the
    /// link-local addresses they already have.
    private func removeLinkLocal(from links: [InterfaceName]) throws {
        guard !links.isEmpty, let mode = LinkSettings.noLinkLocal else { return }
        try handle.perform(links.map { LinkRequest.change($0, LinkSettings(ipv6LinkLocal: mode)) })
        let byIndex = Dictionary(try handle.links(statistics: false).map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        let wanted = Set(links.map(\.rawValue))
        try handle.perform(try handle.addresses().compactMap { a -> NetlinkRequest? in
            guard a.isIPv6LinkLocal, let name = byIndex[a.linkIndex], wanted.contains(name) else { return nil }
            return AddressRequest.delete(a.prefix, linkIndex: a.linkIndex, linkName: name)
        })
    }
}
