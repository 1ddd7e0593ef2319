import QuiverValues

/// Checks a parsed topology for everything that would fail or mislead later: names, references,
/// addresses, MACs, units, floors, kernel names. Reports all problems at once.
public enum TopologyValidator {
    public static func validate(_ t: Topology) -> [TopologyError] {
        var check = Check(t)
        check.topLevel()
        check.uniqueness()
        check.switches()
        for tenant in t.tenants { check.tenant(tenant) }
        check.dhcpSwitches()
        check.nodes()
        check.expectations()
        return check.errors
    }

    /// One validation in progress: the topology, what was seen so far (for collisions), and the
    /// errors found.
    struct Check {
        let t: Topology
        let names: KernelNames
        let top: SourceLocation
        let switchNames: Set<String>
        var errors: [TopologyError] = []
        /// Kernel names given out so far, with what they are for and where.
        var kernelNames: [String: (String, SourceLocation)] = [:]
        var ips: [IPAddress: SourceLocation] = [:]
        var macs: [MACAddress: SourceLocation] = [:]

        init(_ t: Topology) {
            self.t = t
            names = KernelNames(t.name)
            top = SourceLocation(file: t.file, line: 1, column: 1)
            switchNames = Set(t.switches.map(\.name))
        }

        mutating func fail(_ at: SourceLocation?, _ message: String, _ hint: String? = nil) {
            errors.append(TopologyError(at, message, hint: hint))
        }

        mutating func checkName(_ name: String, _ what: String, _ at: SourceLocation) {
            do { try ObjectName.check(name, what, maxBytes: ObjectName.maxBytes) } catch { fail(at, error.message, "names are letters, digits and _") }
        }

        /// A kernel name made from the file's names: short enough, and used once.
        mutating func kernelName(_ n: String, _ what: String, _ at: SourceLocation) {
            if n.utf8.count > InterfaceName.maxBytes {
                fail(at, "kernel name \"\(n)\" for \(what) is \(n.utf8.count) bytes; Linux allows \(InterfaceName.maxBytes)",
                     "shorten the topology, host, switch or VNIC name by \(n.utf8.count - InterfaceName.maxBytes)")
            }
            if let (other, first) = kernelNames[n] {
                fail(at, "kernel name \"\(n)\" for \(what) collides with \(other) at \(first)", "rename one of them")
            } else {
                kernelNames[n] = (what, at)
            }
        }

        mutating func duplicates<T>(_ items: [T], _ key: (T) -> String, _ at: (T) -> SourceLocation, _ what: String) {
            var seen: [String: SourceLocation] = [:]
            for i in items {
                if let first = seen[key(i)] { fail(at(i), "\(what) \"\(key(i))\" is defined twice", "first at \(first)") } else { seen[key(i)] = at(i) }
            }
        }

        /// The topology's name, and its bounds (so that no file makes validation, planning or the
        /// kernel's work unbounded).
        mutating func topLevel() {
            do { _ = try TopologyName(validating: t.name) } catch { fail(top, error.message, "it prefixes every kernel name and names the topology's state") }
            let vnicCount = t.tenants.reduce(0) { $0 + $1.hosts.reduce(0) { $0 + $1.vnics.count } }
            for (count, limit, what) in [(t.switches.count, Limits.switches, "switches"), (t.tenants.count, Limits.tenants, "tenants"),
                                         (vnicCount, Limits.vnics, "VNICs"), (t.expectations.count, Limits.expectations, "expectations")] where count > limit {
                fail(top, "the topology has \(count) \(what); at most \(limit)", "split it into several topologies")
            }
        }

        mutating func uniqueness() {
            duplicates(t.switches, \.name, \.location, "switch")
            duplicates(t.tenants, \.name, \.location, "tenant")
            duplicates(t.tenants.flatMap(\.hosts), \.name, \.location, "host")
        }

        mutating func switches() {
            for s in t.switches { checkName(s.name, "switch", s.location) }
            if t.tenants.isEmpty { fail(top, "the topology has no tenants", "add a tenant with at least one host") }
            for s in t.switches { kernelName(names.bridge(s.name), "switch \(s.name)", s.location) }
        }

        /// A tenant: its name and IFBs, its hosts and their VNICs, and its caps as the shaper will
        /// check them (floors, flows).
        mutating func tenant(_ tenant: Topology.Tenant) {
            checkName(tenant.name, "tenant", tenant.location)
            kernelName(names.ifbFrom(tenant: tenant.name), "tenant \(tenant.name)'s caps", tenant.location)
            kernelName(names.ifbTo(tenant: tenant.name), "tenant \(tenant.name)'s caps", tenant.location)
            if tenant.hosts.isEmpty { fail(tenant.location, "tenant \(tenant.name) has no hosts") }
            var members: [(CapMember, SourceLocation)] = []
            for host in tenant.hosts {
                checkName(host.name, "host", host.location)
                if let vm = host.vm { vmHost(host, vm) } else {
                    for v in host.vnics where v.queues != 1 || v.mode != "tap" {
                        fail(v.location, "VNIC \(host.name)/\(v.name): queues and mode are for kind: vm hosts")
                    }
                }
                if host.vnics.isEmpty { fail(host.location, "host \(host.name) has no vnics") }
                duplicates(host.vnics, \.name, \.location, "VNIC of host \(host.name)")
                var gateways: [Int32: SourceLocation] = [:]
                for v in host.vnics {
                    if let m = vnic(v, of: host, in: tenant, gateways: &gateways) { members.append((m, v.location)) }
                }
            }
            guard let ifbF = try? InterfaceName(validating: names.ifbFrom(tenant: tenant.name)),
                  let ifbT = try? InterfaceName(validating: names.ifbTo(tenant: tenant.name)), !members.isEmpty else { return }
            let group = CapGroup(name: tenant.name, ifbFrom: ifbF, ifbTo: ifbT, maxbw: tenant.maxbw, members: members.map(\.0), ownerTag: "")
            for p in group.problems() {
                let at = members.first { p.hasPrefix($0.0.name + ":") }?.1
                fail(at ?? tenant.location, p.replacingOccurrences(of: "cap group ", with: "tenant "))
            }
        }

        /// A VNIC: its names, what it is over, its addresses, gateway, MAC and allowed sources.
        /// Returns it as a member of its tenant's caps (nil when its port's name is not valid).
        mutating func vnic(_ v: Topology.VNIC, of host: Topology.Host, in tenant: Topology.Tenant,
                           gateways: inout [Int32: SourceLocation]) -> CapMember? {
            checkName(v.name, "VNIC", v.location)
            if Limits.reservedVNICNames.contains(v.name) {
                fail(v.location, "VNIC name \(InvalidValue.quoted(v.name)) is reserved: " + (v.name == "lo" ? "every namespace has its loopback device lo" : "the kernel refuses it as a link name"),
                     "choose another name, such as net0")
            } else if (try? InterfaceName(validating: v.name)) == nil { fail(v.location, "VNIC name \"\(v.name)\" is not a valid interface name") }
            if v.flows.count > Limits.flowsPerVNIC { fail(v.location, "VNIC \(host.name)/\(v.name) has \(v.flows.count) flows; at most \(Limits.flowsPerVNIC)") }
            let mtu = v.mtu ?? t.switches.first { $0.name == v.over }?.mtu
            if let mtu, mtu < 1280, host.vm == nil, v.wantsLinkLocal {
                fail(v.location, "VNIC \(host.name)/\(v.name) has IPv6 (an address or link-local) but an MTU of \(mtu)",
                     "IPv6 needs an MTU of at least 1280; the kernel turns IPv6 off below it")
            }
            kernelName(names.hostDevice(host: host.name, vnic: v.name), "VNIC \(host.name)/\(v.name)", v.location)
            over(v, of: host)
            addresses(v, of: host)
            if let gw = v.gateway { gateway(gw, v, of: host, gateways: &gateways) }
            let mac: MACAddress
            switch v.mac {
            case .fixed(let m): mac = m
            case .auto, .random: mac = names.autoMAC(tenant: tenant.name, host: host.name, vnic: v.name)
            }
            if let first = macs[mac] { fail(v.location, "MAC \(mac) of \(host.name)/\(v.name) is also used at \(first)") }
            macs[mac] = v.location
            if v.allowedIPs.count > 32 { fail(v.location, "allowed-ips has \(v.allowedIPs.count) entries; at most 32") }
            for p in v.allowedIPs {
                let a = p.network.address
                if (a.isMulticast && p.length >= (a.isV4 ? 4 : 8)) || (a.isLoopback && p.length >= (a.isV4 ? 8 : 128)) || (a.isIPv4Mapped && p.length >= 96) {
                    fail(v.location, "allowed-ips \(p) of \(host.name)/\(v.name) \(a.notForAnInterface ?? "cannot be a source")", "allowed-ips lists the unicast sources the VNIC may send from")
                }
            }
            guard let dev = try? InterfaceName(validating: names.hostDevice(host: host.name, vnic: v.name)) else { return nil }
            return CapMember(name: "\(host.name)/\(v.name)", device: dev, mac: mac, maxbw: v.maxbw, floor: v.floor, flows: v.flows,
                             burst: v.burst, queueLimit: v.queue)
        }

        /// A switch of the topology — or, for a guest's macvtap, a host link (like `dladm
        /// create-vnic -l LINK`: checked against the kernel when applied).
        mutating func over(_ v: Topology.VNIC, of host: Topology.Host) {
            if v.mode == "macvtap" && host.kind == .vm && !switchNames.contains(v.over) {
                if (try? InterfaceName(validating: v.over)) == nil {
                    fail(v.location, "VNIC \(host.name)/\(v.name) is over \"\(v.over)\", which is neither a switch of this topology nor a valid link name")
                }
            } else if !switchNames.contains(v.over) {
                fail(v.location, "VNIC \(host.name)/\(v.name) is over \"\(v.over)\", which is not a switch of this topology",
                     (t.switches.isEmpty ? "add it under `switches:`" : "switches: " + t.switches.map(\.name).joined(separator: ", "))
                        + (host.kind == .vm ? "; a `mode: macvtap` NIC may name a host link instead" : ""))
            }
        }

        /// Unicast, used once in the file, not a subnet's network or broadcast address.
        mutating func addresses(_ v: Topology.VNIC, of host: Topology.Host) {
            for p in v.ips {
                if let why = p.address.notForAnInterface {
                    fail(v.location, "address \(p) of \(host.name)/\(v.name) \(why)", "a VNIC's address is a unicast address such as 10.10.0.11/24 or fd10::11/64")
                    continue
                }
                if let first = ips[p.address] { fail(v.location, "address \(p.address) of \(host.name)/\(v.name) is also used at \(first)") }
                ips[p.address] = v.location
                if p.address.isV4 && p.length < 31 {
                    if p.address == p.network.address { fail(v.location, "\(p) is the network address of its subnet", "use a host address such as \(p.network.address)+1") }
                    if p.address == TopologyValidator.broadcast(p) { fail(v.location, "\(p) is the broadcast address of its subnet") }
                }
            }
        }

        /// A router's unicast address on one of the VNIC's subnets; one per family per host.
        mutating func gateway(_ gw: IPAddress, _ v: Topology.VNIC, of host: Topology.Host, gateways: inout [Int32: SourceLocation]) {
            if let why = gw.notForAnInterface {
                fail(v.location, "gateway \(gw) of \(host.name)/\(v.name) \(why)", "a gateway is a router's unicast address on the VNIC's subnet")
            } else if v.ips.contains(where: { $0.address == gw }) {
                fail(v.location, "gateway \(gw) of \(host.name)/\(v.name) is the VNIC's own address", "name the router's address")
            }
            if !v.ips.contains(where: { $0.contains(gw) }) {
                fail(v.location, "gateway \(gw) of \(host.name)/\(v.name) is outside its subnets (\(v.ips.map(\.description).joined(separator: ", ")))",
                     "the gateway must be reachable on the link")
            }
            if let first = gateways[gw.family] { fail(v.location, "host \(host.name) has a second default gateway of the same family", "first at \(first)") }
            gateways[gw.family] = v.location
        }

        /// Expectations name endpoints that exist and can be probed.
        mutating func expectations() {
            let tenantsByName = Dictionary(t.tenants.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for e in t.expectations {
                var resolved: [Topology.VNIC] = []
                for ref in e.endpoints {
                    guard let tenant = tenantsByName[ref.tenant] else {
                        fail(e.location, "expectation names tenant \(InvalidValue.quoted(ref.tenant)), which the file does not have",
                             "tenants: " + t.tenants.prefix(20).map(\.name).joined(separator: ", "))
                        continue
                    }
                    guard let host = tenant.hosts.first(where: { $0.name == ref.host }) else {
                        fail(e.location, "expectation names host \(InvalidValue.quoted(ref.host)) of tenant \(ref.tenant), which it does not have",
                             "hosts: " + tenant.hosts.prefix(20).map(\.name).joined(separator: ", "))
                        continue
                    }
                    guard let v = ref.vnic.map({ n in host.vnics.first { $0.name == n } }) ?? host.vnics.first else {
                        fail(e.location, "expectation names VNIC \(ref), which does not exist", "VNICs: " + host.vnics.map(\.name).joined(separator: ", "))
                        continue
                    }
                    if !v.ips.contains(where: { $0.address.isV4 }) {
                        fail(e.location, "\(ref) has no IPv4 address to probe with", "give its VNIC an IPv4 address in `ips`")
                    }
                    resolved.append(v)
                }
                if case .configured(let ref, _) = e, let host = tenantsByName[ref.tenant]?.hosts.first(where: { $0.name == ref.host }), host.vm?.agent != "qga" {
                    fail(e.location, "`configured` looks inside \(ref) through qemu-guest-agent, and \(ref) " + (host.vm == nil ? "is a netns host" : "has `agent: \(host.vm!.agent)`"),
                         "name a vm host with `agent: qga` (the default with `image`)")
                }
                if resolved.count == 2, e.endpoints[0] == e.endpoints[1] || resolved[0] == resolved[1] {
                    fail(e.location, "an expectation between \(e.endpoints[0]) and itself proves nothing", "name two different endpoints")
                }
            }
        }
    }

    static func broadcast(_ p: IPPrefix) -> IPAddress {
        var b = p.network.address.bytes
        for i in 0..<b.count {
            let hostBits = max(0, min(8, (i + 1) * 8 - p.length))
            b[i] |= UInt8(truncatingIfNeeded: (1 << hostBits) - 1)
        }
        return (try? IPAddress(bytes: b)) ?? p.address
    }
}
