import QuiverValues

/// The DHCP servers a topology asks for: one per tenant with guests on each `dhcp: true` switch,
/// answering only that tenant's guests' MACs, each with the file's address and gateway (static
/// leases). Each server is a host of its tenant that the file does not name — its namespace
/// `T-N-dhcp-S`, its VNIC `eth0` over the switch, port `T.dXXXX` — so the tenant's isolation
/// and link protection hold for it as for any of its hosts. Names in a file have no `-` or `.`,
/// so none of these can be a name the file makes.
public struct DHCPServerPlan: Sendable, Equatable {
    public var tenant: String
    public var switchName: String
    /// The server's host name in the tenant (`dhcp-S`), its namespace's last part.
    public var host: String
    /// The server's own addresses: one per subnet it serves, the highest of the subnet that no
    /// VNIC of the topology uses.
    public var addresses: [IPPrefix]
    public var leases: [Lease]
    /// Subnets with no free address for the server (a validation error).
    public var full: [IPPrefix]

    public struct Lease: Sendable, Equatable {
        public var host: String
        public var vnic: String
        public var mac: MACAddress
        public var address: IPPrefix
        public var gateway: IPAddress?
    }

    /// The name of the server's endpoint inside its namespace.
    public static let device = "eth0"

    /// The port in the fabric: `T.d` and four hex digits of a hash of tenant and switch (the
    /// validator reports the rare collision, as for every kernel name).
    public func hostDevice(_ names: KernelNames) -> String {
        names.topology + ".d" + String(format: "%04x", StableHash.fnv1a32("\(tenant)/\(switchName)") & 0xFFFF)
    }

    public func namespace(_ names: KernelNames) -> String { names.namespace(tenant: tenant, host: host) }
    public func mac(_ names: KernelNames) -> MACAddress { names.autoMAC(tenant: tenant, host: host, vnic: Self.device) }

    /// Every server `t` asks for.
    public static func all(_ t: Topology) -> [DHCPServerPlan] {
        let names = KernelNames(t.name)
        let used = Set(t.tenants.flatMap { $0.hosts.flatMap { $0.vnics.flatMap { v in v.ips.map(\.address) + (v.gateway.map { [$0] } ?? []) } } })
        var out: [DHCPServerPlan] = []
        for s in t.switches where s.dhcp {
            for tenant in t.tenants {
                var leases: [Lease] = []
                for host in tenant.hosts where host.vm != nil {
                    for v in host.vnics where v.over == s.name {
                        guard let a = v.ips.first(where: { $0.address.isV4 }) else { continue }
                        let mac: MACAddress
                        if case .fixed(let m) = v.mac { mac = m } else { mac = names.autoMAC(tenant: tenant.name, host: host.name, vnic: v.name) }
                        leases.append(Lease(host: host.name, vnic: v.name, mac: mac, address: a, gateway: v.gateway.flatMap { $0.isV4 ? $0 : nil }))
                    }
                }
                guard !leases.isEmpty else { continue }
                var subnets: [IPPrefix] = []
                for l in leases where !subnets.contains(l.address.network) { subnets.append(l.address.network) }
                var addresses: [IPPrefix] = [], full: [IPPrefix] = []
                for net in subnets {
                    if let a = freeAddress(in: net, avoiding: used) { addresses.append(a) } else { full.append(net) }
                }
                out.append(DHCPServerPlan(tenant: tenant.name, switchName: s.name, host: "dhcp-\(s.name)", addresses: addresses, leases: leases, full: full))
            }
        }
        return out
    }

    /// The highest address of `net` below its broadcast address that is not in `used` (looking
    /// at most 256 down), with the subnet's length; nil for /31 and /32 or a full range.
    static func freeAddress(in net: IPPrefix, avoiding used: Set<IPAddress>) -> IPPrefix? {
        guard net.address.isV4, net.length <= 30 else { return nil }
        let b = net.network.address.bytes
        let base = UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
        let size = UInt32(1) << UInt32(32 - net.length)
        var candidate = base + size - 2
        while candidate > base, base + size - 2 - candidate < 256 {
            let a = IPAddress(UInt8(candidate >> 24), UInt8(candidate >> 16 & 0xFF), UInt8(candidate >> 8 & 0xFF), UInt8(candidate & 0xFF))
            if !used.contains(a) { return try? IPPrefix(address: a, length: net.length) }
            candidate -= 1
        }
        return nil
    }
}
