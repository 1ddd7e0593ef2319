import Foundation
import QuiverValues
import Yams

/// Reads a topology file (YAML, or JSON — YAML's subset) into a ``Topology``, collecting every
/// error with its line and column. Unknown keys are errors, with a suggestion (a typo such as
/// `allow_restricted` must never be silently ignored), and so is a key written twice (the YAML
/// libraries' "last one wins" would let a trailing `protection: []` turn protection off unseen).
///
/// Input is hostile until parsed: only a regular file of at most ``Limits/fileBytes`` is read,
/// nesting and anchors are bounded before the YAML is composed (``DocumentGuard``), aliases are
/// refused, numbers are decimal digits, and every value an error quotes is escaped and cut short.
public struct TopologyParser {
    public let file: String
    private var errors: [TopologyError] = []
    private var dropped = 0

    public init(file: String) { self.file = file }

    /// Parses `text`; throws ``TopologyErrors`` listing every problem found. `fileOwner`: the uid
    /// that owns the file the text came from (guest files must be that user's to read).
    public static func parse(_ text: String, file: String, fileOwner: UInt32? = nil) throws -> Topology {
        var p = TopologyParser(file: file)
        if var topology = p.parseDocument(text), p.errors.isEmpty {
            topology.fileOwner = fileOwner
            topology.sourceDigest = String(StableHash.fnv1a64(text), radix: 16)
            let problems = TopologyValidator.validate(topology)
            if problems.isEmpty { return topology }
            throw TopologyErrors(capping: problems)
        }
        throw TopologyErrors(errors: p.errors, more: p.dropped)
    }

    /// Reads and parses a file: a regular file (not a FIFO, a device or a directory) of at most
    /// ``Limits/fileBytes``, in UTF-8.
    public static func load(path: String) throws -> Topology {
        let (text, owner) = try read(path)
        return try parse(text, file: path, fileOwner: owner)
    }

    /// The text of the file at `path` and its owner's uid, read as ``load(path:)`` reads it (a
    /// regular file, bounded, UTF-8); refusals are ``TopologyErrors``.
    public static func readFile(_ path: String) throws -> (text: String, owner: UInt32) { try read(path) }

    static func read(_ path: String) throws -> (String, UInt32) {
        func refuse(_ message: String, _ hint: String? = nil) -> TopologyErrors {
            TopologyErrors(errors: [TopologyError(nil, "\(InvalidValue.quoted(path, limit: 200)) \(message)", hint: hint)])
        }
        // Only a regular file is opened at all: a FIFO would block, a device node may act on open.
        let fd: Int32, st: stat
        switch RegularFile.open(path, O_RDONLY | O_NONBLOCK, followLinks: true) {
        case .success(let (f, s)): (fd, st) = (f, s)
        case .failure(.notRegular(let mode)):
            throw refuse("is not a regular file (\(FileKind.name(mode)))", "a topology file is a YAML or JSON file")
        case .failure(.missing): throw refuse("cannot be read (it does not exist)", "check the path")
        case .failure(let e):
            let why: String
            if case .failed(let n) = e { why = String(cString: strerror(n)) } else { why = "\(e)" }
            throw refuse("cannot be read (\(why))", "check the path and permissions")
        }
        defer { close(fd) }
        guard st.st_size <= Limits.fileBytes else {
            throw refuse("is \(st.st_size) bytes; topology files are at most \(Limits.fileBytes)", "split it into several topologies")
        }
        var data = Data()
        var buf = [UInt8](repeating: 0, count: 65536)
        while data.count <= Limits.fileBytes {
            let n = Glibc.read(fd, &buf, buf.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw refuse("cannot be read (\(String(cString: strerror(errno))))")
            }
            if n == 0 { break }
            data.append(contentsOf: buf[0..<n])
        }
        // A file that grows while it is read (or a /proc file that reports size 0).
        guard data.count <= Limits.fileBytes else { throw refuse("is more than \(Limits.fileBytes) bytes", "split it into several topologies") }
        guard let text = String(data: data, encoding: .utf8) else { throw refuse("is not UTF-8 text") }
        return (text, st.st_uid)
    }

    // MARK: Document

    mutating func parseDocument(_ text: String) -> Topology? {
        if let e = DocumentGuard.scan(text, file: file) {
            report(e)
            return nil
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            report(yamlError(e))
            return nil
        } catch {
            report(TopologyError(nil, "cannot parse: \(error)"))
            return nil
        }
        if let root, let e = DocumentGuard.check(root, file: file) {
            report(e)
            return nil
        }
        guard let root, let map = mapping(root, "the topology") else {
            if root == nil { report(TopologyError(SourceLocation(file: file, line: 1, column: 1), "the file is empty", hint: "start with `name: lab`")) }
            return nil
        }
        check(map, TopologyFields.topology)
        let name = requiredString(map, "name", in: "the topology") ?? ""
        let nodes = list(map, "nodes").compactMap { parseNode($0) }
        let switches = list(map, "switches").compactMap { parseSwitch($0) }
        let tenants = list(map, "tenants").compactMap { parseTenant($0) }
        let expectations = list(map, "expect").compactMap { parseExpectation($0) }
        if map[key: "tenants"] == nil {
            report(TopologyError(loc(root), "the topology has no `tenants:`", hint: "add at least one tenant with a host"))
        }
        var t = Topology(name: name, switches: switches, tenants: tenants, expectations: expectations, file: file)
        t.nodes = nodes
        return t
    }

    mutating func parseNode(_ node: Node) -> Topology.Node? {
        guard let m = mapping(node, "a node") else { return nil }
        check(m, TopologyFields.node)
        guard let name = requiredString(m, "name", in: "a node") else { return nil }
        guard m[key: "underlay"] != nil else {
            report(TopologyError(loc(node), "node \(name) has no `underlay:`", hint: "give the address this node's VXLAN packets use, e.g. `underlay: 192.0.2.1`"))
            return nil
        }
        guard let underlay = address(m, "underlay") else { return nil }
        return Topology.Node(name: name, underlay: underlay, location: loc(m[key: "underlay"]!))
    }

    mutating func parseSwitch(_ node: Node) -> Topology.Switch? {
        guard let m = mapping(node, "a switch") else { return nil }
        check(m, TopologyFields.switch)
        guard let name = requiredString(m, "name", in: "a switch") else { return nil }
        var sw = Topology.Switch(name: name, mtu: uint32(m, "mtu"), location: loc(node))
        if let n = m[key: "dhcp"] {
            sw.dhcp = boolean(n, "dhcp") ?? false
            sw.dhcpLocation = loc(n)
        }
        if let n = m[key: "vni"] {
            sw.vni = uint32(m, "vni", in: 1...16_777_215)
            sw.vniLocation = loc(n)
        }
        return sw
    }

    mutating func parseTenant(_ node: Node) -> Topology.Tenant? {
        guard let m = mapping(node, "a tenant") else { return nil }
        check(m, TopologyFields.tenant)
        guard let name = requiredString(m, "name", in: "a tenant") else { return nil }
        let hosts = list(m, "hosts").compactMap { parseHost($0) }
        return Topology.Tenant(name: name, maxbw: rate(m, "maxbw"), hosts: hosts, location: loc(node))
    }

    mutating func parseHost(_ node: Node) -> Topology.Host? {
        guard let m = mapping(node, "a host") else { return nil }
        let machineKeys = TopologyFields.host.fields.filter { $0.presence == .vmHost }.map(\.key)
        check(m, TopologyFields.host)
        guard let name = requiredString(m, "name", in: "a host") else { return nil }
        var kind = Topology.HostKind.netns
        if let k = m[key: "kind"] {
            if let s = scalar(k, "kind"), let parsed = Topology.HostKind(rawValue: s) {
                kind = parsed
            } else if k.scalar != nil {
                report(TopologyError(loc(k), "unknown host kind \(InvalidValue.quoted(k.string ?? ""))", hint: "use netns or vm"))
            }
        }
        let vnics = list(m, "vnics").compactMap { parseVNIC($0) }
        var machine: Topology.Machine?
        if kind == .vm {
            machine = parseMachine(m, host: name, at: loc(node))
        } else if let stray = machineKeys.first(where: { m[$0] != nil }) {
            report(TopologyError(loc(m[stray]!), "`\(stray)` belongs to `kind: vm` hosts; \(name) is a netns host",
                                        hint: "add `kind: vm` or remove `\(stray)`"))
        }
        var host = Topology.Host(name: name, kind: kind, vnics: vnics, vm: machine, location: loc(node))
        if let n = m[key: "node"] {
            host.node = scalar(n, "node")
            host.nodeLocation = loc(n)
        }
        return host
    }

    mutating func parseVNIC(_ node: Node) -> Topology.VNIC? {
        guard let m = mapping(node, "a VNIC") else { return nil }
        check(m, TopologyFields.vnic)
        guard let name = requiredString(m, "name", in: "a VNIC") else { return nil }
        let over = requiredString(m, "over", in: "VNIC \(name)") ?? ""
        var mac = Topology.MACSetting.auto
        if let n = m[key: "mac"], let s = scalar(n, "mac") {
            switch s {
            case "auto": mac = .auto
            case "random": mac = .random
            default:
                do { mac = .fixed(try MACAddress.unicast(s)) } catch { report(TopologyError(loc(n), "\(error)")) }
            }
        }
        var protection: [Topology.Protection] = []
        var protectionWritten = false
        if let p = m[key: "protection"] {
            protectionWritten = true
            for item in sequence(p, "protection") {
                guard let s = scalar(item, "protection") else { continue }
                if let v = Topology.Protection(rawValue: s) { protection.append(v) } else {
                    report(TopologyError(loc(item), "unknown protection \(InvalidValue.quoted(s))",
                                                hint: "use " + Topology.Protection.allCases.map(\.rawValue).joined(separator: ", ") + suggestion(s, Topology.Protection.allCases.map(\.rawValue))))
                }
            }
        }
        let ips = prefixes(m, "ips")
        var queues = 1
        if let n = m[key: "queues"], let s = scalar(n, "queues") {
            if let q = DecimalText.integer(s).map(Int.init), (1...16).contains(q) { queues = q } else {
                report(TopologyError(loc(n), "queues \(InvalidValue.quoted(s)) must be a number from 1 to 16"))
            }
        }
        if let n = m[key: "model"], let s = scalar(n, "model"), s != "virtio" {
            report(TopologyError(loc(n), "model \(InvalidValue.quoted(s)) is not supported", hint: "use model: virtio"))
        }
        var mode = "tap"
        if let n = m[key: "mode"], let s = scalar(n, "mode") {
            if s != "tap" && s != "macvtap" {
                report(TopologyError(loc(n), "unknown mode \(InvalidValue.quoted(s))", hint: "use mode: tap (a port of the switch) or macvtap (over the switch)"))
            }
            mode = s
        }
        var vnic = Topology.VNIC(
            name: name, over: over, mac: mac, ips: ips,
            gateway: address(m, "gateway"), mtu: uint32(m, "mtu"), maxbw: rate(m, "maxbw"), floor: rate(m, "floor"),
            burst: byteCount(m, "burst"), queue: byteCount(m, "queue"),
            // Like SmartOS: protection is on unless the file turns it off (`protection: []`).
            protection: protectionWritten ? protection : [.macNospoof, .ipNospoof, .restricted],
            allowedIPs: m[key: "allowed-ips"] != nil ? prefixes(m, "allowed-ips") : [],
            flows: list(m, "flows").compactMap { parseFlow($0) },
            location: loc(node))
        vnic.queues = queues
        vnic.mode = mode
        if let n = m[key: "link-local"], let s = scalar(n, "link-local") {
            switch s {
            case "auto": vnic.linkLocal = nil
            case "on", "true": vnic.linkLocal = true     // true/false: JSON files
            case "off", "false": vnic.linkLocal = false
            default:
                report(TopologyError(loc(n), "link-local \(InvalidValue.quoted(s)) is not auto, on or off",
                                            hint: "auto (the default) gives the VNIC an IPv6 link-local address when `ips` has an IPv6 address"))
            }
        }
        return vnic
    }

    mutating func parseFlow(_ node: Node) -> FlowCap? {
        guard let m = mapping(node, "a flow") else { return nil }
        check(m, TopologyFields.flow)
        guard let name = requiredString(m, "name", in: "a flow") else { return nil }
        var transport: Transport?
        if let n = m[key: "transport"], let s = scalar(n, "transport") {
            transport = Transport(rawValue: s)
            if transport == nil { report(TopologyError(loc(n), "unknown transport \(InvalidValue.quoted(s))", hint: "use tcp, udp or icmp")) }
        }
        guard let maxbw = rate(m, "maxbw") else {
            report(TopologyError(loc(node), "flow \(name) has no maxbw", hint: "add e.g. `maxbw: 20M` (0 blocks the flow)"))
            return nil
        }
        return FlowCap(name: name, transport: transport, localIP: prefix(m, "local-ip"), remoteIP: prefix(m, "remote-ip"),
                       localPort: port(m, "local-port"), remotePort: port(m, "remote-port"), maxbw: maxbw)
    }

    /// `- reach: {from: acme/web, to: acme/db}` and the other kinds: one key naming the kind,
    /// whose value holds the fields.
    mutating func parseExpectation(_ node: Node) -> Topology.Expectation? {
        let kinds = TopologyFields.expectations.map(\.id)
        guard let outer = mapping(node, "an expectation") else { return nil }
        guard outer.count == 1, let (k, v) = outer.first.map({ ($0.key, $0.value) }), let kind = k.string, kinds.contains(kind) else {
            let first = outer.first?.key.string ?? ""
            report(TopologyError(loc(node), "an expectation is one of \(kinds.joined(separator: ", ")) with its fields",
                                        hint: "e.g. `- reach: {from: acme/web, to: acme/db}`" + suggestion(first, kinds)))
            return nil
        }
        guard let m = mapping(v, kind) else { return nil }
        let location = loc(node)
        func endpoint(_ key: String) -> Topology.EndpointRef? {
            guard let n = m[key: key] else {
                report(TopologyError(locOf(m), "\(kind) has no `\(key)`", hint: "add `\(key): tenant/host`"))
                return nil
            }
            guard let s = scalar(n, key) else { return nil }
            let parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
                report(TopologyError(loc(n), "`\(key): \(InvalidValue.escaped(s))` is not an endpoint", hint: "write tenant/host or tenant/host/vnic"))
                return nil
            }
            return Topology.EndpointRef(tenant: parts[0], host: parts[1], vnic: parts.count == 3 ? parts[2] : nil)
        }
        func probes(default d: [Topology.ReachProbe]) -> [Topology.ReachProbe] {
            guard let n = m[key: "probe"] else { return d }
            let items = n.sequence.map(Array.init) ?? [n]
            return items.compactMap { item in
                guard let s = scalar(item, "probe") else { return nil }
                if let p = Topology.ReachProbe(rawValue: s) { return p }
                report(TopologyError(loc(item), "unknown probe \(InvalidValue.quoted(s))", hint: "use icmp, tcp or arp" + suggestion(s, Topology.ReachProbe.allCases.map(\.rawValue))))
                return nil
            }
        }
        switch kind {
        case "reach", "no-reach":
            check(m, TopologyFields.section(kind)!)
            guard let from = endpoint("from"), let to = endpoint("to") else { return nil }
            let port = self.port(m, "port") ?? 7
            return kind == "reach" ? .reach(from: from, to: to, probes: probes(default: [.icmp]), port: port, location: location)
                : .noReach(from: from, to: to, probes: probes(default: [.icmp, .tcp, .arp]), port: port, location: location)
        case "bandwidth":
            check(m, TopologyFields.bandwidth)
            guard let from = endpoint("from"), let to = endpoint("to") else { return nil }
            return parseBandwidth(m, from: from, to: to, location: location)
        case "configured":
            check(m, TopologyFields.configured)
            guard let host = endpoint("host") else { return nil }
            guard host.vnic == nil else {
                report(TopologyError(loc(m[key: "host"]!), "`configured` takes a host (tenant/host), not a VNIC", hint: "every NIC of the host is checked"))
                return nil
            }
            return .configured(host: host, location: location)
        default: // spoof
            check(m, TopologyFields.spoof)
            guard let from = endpoint("from") else { return nil }
            var kinds = Topology.SpoofKind.allCases
            if let n = m[key: "kind"] {
                let items = n.sequence.map(Array.init) ?? [n]
                kinds = items.compactMap { item in
                    guard let s = scalar(item, "kind") else { return nil }
                    if let k = Topology.SpoofKind(rawValue: s) { return k }
                    report(TopologyError(loc(item), "unknown spoof kind \(InvalidValue.quoted(s))",
                                                hint: "use mac, ip, arp or ethertype" + suggestion(s, Topology.SpoofKind.allCases.map(\.rawValue))))
                    return nil
                }
            }
            var count = 100
            if let n = m[key: "count"], let s = scalar(n, "count") {
                if let c = DecimalText.integer(s).map(Int.init), (1...10000).contains(c) { count = c } else {
                    report(TopologyError(loc(n), "count \(InvalidValue.quoted(s)) must be from 1 to 10000"))
                }
            }
            return .spoof(from: from, kinds: kinds, count: count, location: location)
        }
    }

    /// A `bandwidth` expectation's rate, tolerance and duration.
    mutating func parseBandwidth(_ m: Node.Mapping, from: Topology.EndpointRef, to: Topology.EndpointRef, location: SourceLocation) -> Topology.Expectation? {
        guard let r = rate(m, "rate") else {
            if m[key: "rate"] == nil { report(TopologyError(locOf(m), "bandwidth has no `rate`", hint: "add e.g. `rate: 20M` (the cap you expect)")) }
            return nil
        }
        var tolerance = 0.1
        if let n = m[key: "tolerance"], let s = scalar(n, "tolerance") {
            let number = s.hasSuffix("%") ? DecimalText.double(s.dropLast()).map { $0 / 100 } : DecimalText.double(s)
            if let t = number, t > 0, t < 1 { tolerance = t } else {
                report(TopologyError(loc(n), "tolerance \(InvalidValue.quoted(s)) must be a percentage like 10% (above 0, below 100)"))
            }
        }
        var seconds = 3.0
        if let n = m[key: "seconds"], let s = scalar(n, "seconds") {
            if let v = DecimalText.double(s), v >= 1, v <= 60 { seconds = v } else {
                report(TopologyError(loc(n), "seconds \(InvalidValue.quoted(s)) must be from 1 to 60"))
            }
        }
        return .bandwidth(from: from, to: to, rate: r, tolerance: tolerance, seconds: seconds, location: location)
    }

    // MARK: Errors

    /// Records an error; past ``Limits/errors`` only counts it.
    mutating func report(_ e: TopologyError) {
        if errors.count < Limits.errors { errors.append(e) } else { dropped += 1 }
    }
}
