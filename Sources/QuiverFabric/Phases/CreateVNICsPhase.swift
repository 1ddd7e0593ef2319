import Foundation
import QuiverKernel
import QuiverNetlink
import SystemPackage

/// Phase `createVNICs`: new VNICs, each batch as soon as its namespaces exist.
extension ApplyRun {
    /// New VNICs: those of existing namespaces first, then in the order their namespaces are
    /// made, each batch as soon as its namespaces exist.
    func createVNICs(_ steps: [Operation]) throws {
        let order = namespaces?.positions ?? [:]
        let vnics = steps.compactMap { if case .createVNIC(let v) = $0 { return v } else { return nil } }
            .enumerated().sorted { (order[$0.element.namespace] ?? -1, $0.offset) < (order[$1.element.namespace] ?? -1, $1.offset) }
            .map(\.element)
        let index = try indexes()
        var next = 0
        while next < vnics.count {
            let ready = try namespaces?.wait(forMoreThan: order[vnics[next].namespace] ?? -1) ?? Int.max
            var end = next
            while end < vnics.count, (order[vnics[end].namespace] ?? -1) < ready { end += 1 }
            try makeVNICs(vnics[next..<end], bridgeIndex: index)
            result.created += end - next
            tick(end - next)
            next = end
        }
    }

    /// Creates VNICs' veth pairs in one pipelined batch: the endpoint straight into its namespace
    /// and up, the port beside it in the fabric, down, then put on its switch with its tag. The
    /// endpoint has no carrier until its port comes up, and the port comes up only once caps and
    /// rules are in place (the ports-up phase).
    ///
    /// The endpoint is the pair's main link because the kernel can bring only that one up while
    /// it makes the pair (one request less per VNIC at the end of an apply); the port, the peer,
    /// lands in the namespace of the socket that asks.
    private func makeVNICs(_ vnics: ArraySlice<DesiredFabric.VNIC>, bridgeIndex: [String: Int32]) throws {
        var fds: [String: FileDescriptor] = [:]
        defer { for fd in fds.values { try? fd.close() } }
        for ns in Set(vnics.map(\.namespace)) { fds[ns] = try NetworkNamespace.named(ns).open() }
        var requests: [NetlinkRequest] = []
        for v in vnics {
            guard let br = bridgeIndex[v.bridge.rawValue], let fd = fds[v.namespace] else {
                throw missing("create vnic", v.hostDevice.rawValue, "switch \(v.bridge) missing")
            }
            let port = v.hostDevice
            let veth = Veth(peer: port, peerSettings: LinkSettings(mtu: v.mtu, group: desired.group, txQueues: 1, rxQueues: 1))
            var create = LinkRequest.add(v.name, veth,
                                         LinkSettings(up: true, mtu: v.mtu, mac: v.mac, namespace: .fd(fd.rawValue), txQueues: 1, rxQueues: 1))
            // Errors name the VNIC by its port, as everything else does, and say where its endpoint goes.
            create[0].context = RequestContext("create vnic", "\(v.hostDevice) (endpoint \(v.name) in netns \(v.namespace))", subject: .link)
            requests += create
            // The port: no IPv6 link-local address (nor the duplicate address detection, MLD
            // reports and router solicitations that come with one), and none of the thousand
            // fe80::/64 routes that many ports would put in the fabric's routing table. It stays
            // down until its caps and rules are in place: a clsact qdisc attached to a link that
            // is up costs an RCU grace period (the kernel deactivates the link's queues).
            requests.append(LinkRequest.change(port, LinkSettings(masterIndex: br, alias: v.tag, ipv6LinkLocal: LinkSettings.noLinkLocal)))
        }
        try handle.perform(requests)
    }
}
