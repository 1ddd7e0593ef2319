import QuiverKernel
import QuiverProtection
import QuiverTopology
import QuiverVM

extension DesiredFabric {
    /// The DHCP servers the file asks for (``DHCPServerPlan``), each with the namespace and the
    /// VNIC that make it a host of its tenant: protected like one (its own MAC and addresses
    /// only, IPv4 and ARP only), isolated with its tenant.
    static func dhcp(_ t: Topology) throws(InvalidValue) -> (servers: [DHCPServer], namespaces: [Namespace], vnics: [VNIC]) {
        let n = KernelNames(t.name)
        let topology = try TopologyName(validating: t.name)
        var servers: [DHCPServer] = [], namespaces: [Namespace] = [], vnics: [VNIC] = []
        for plan in DHCPServerPlan.all(t) where plan.full.isEmpty {
            let ns = try NamespaceName(validating: plan.namespace(n))
            let bridge = try InterfaceName(validating: n.bridge(plan.switchName))
            namespaces.append(Namespace(name: ns, tag: n.hostTag(tenant: plan.tenant, host: plan.host)))
            vnics.append(VNIC(tenant: plan.tenant, host: plan.host, name: try InterfaceName(validating: DHCPServerPlan.device),
                              hostDevice: try InterfaceName(validating: plan.hostDevice(n)), bridge: bridge, namespace: ns.rawValue,
                              mac: plan.mac(n), mtu: t.switches.first { $0.name == plan.switchName }?.mtu, ips: plan.addresses, gateway: nil,
                              tag: n.vnicTag(tenant: plan.tenant, host: plan.host, vnic: DHCPServerPlan.device),
                              protection: [.macNospoof, .ipNospoof, .restricted], allowed: plan.addresses.map(\.address.hostPrefix)))
            servers.append(DHCPServer(label: "tenant \(plan.tenant) on switch \(plan.switchName) of topology \(t.name)", namespace: ns.rawValue,
                                      device: DHCPServerPlan.device, addresses: plan.addresses,
                                      leases: plan.leases.map { DHCPLease(mac: $0.mac, address: $0.address, gateway: $0.gateway) },
                                      directory: DHCPServer.directory(topology: topology, tenant: plan.tenant, switchName: plan.switchName)))
        }
        return (servers, namespaces, vnics)
    }
}
