import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverProtection
import QuiverTopology
import QuiverVM

/// One row of `quiver verify`.
public struct VerifyRow: Sendable, Codable, Equatable {
    public var index: Int
    public var kind: String
    public var from: String
    public var to: String
    public var passed: Bool
    /// What was measured or seen.
    public var detail: String
    /// Where the expectation is written (`file:line:column`).
    public var location: String
}

/// An endpoint of the applied topology, resolved from the kernel: a namespace host, or a guest
/// reached through its agent.
struct ResolvedEndpoint {
    var ref: Topology.EndpointRef
    var namespace: NetworkNamespace?
    /// A guest's shell: the test guest's agent or qemu-guest-agent.
    var agent: GuestShell?
    /// The guest speaks through qemu-guest-agent (a Debian-like userland: iproute2, iputils,
    /// OpenBSD netcat, python3) rather than the test guest's busybox.
    var qga: Bool { agent is QGAClient }
    var device: InterfaceName
    var hostDevice: InterfaceName
    var bridge: InterfaceName
    var mac: MACAddress
    var ipv4: IPAddress
    var mtu: UInt32
}

extension Fabric {
    /// Runs the topology's `expect:` block against what is applied. Probes run inside the
    /// endpoints' namespaces (or guests, through their agent) and address only the topology's own
    /// endpoints (or the switch's broadcast domain); each is bounded in count and time.
    public func verify(_ t: Topology, progress: ((VerifyRow) -> Void)? = nil) throws -> [VerifyRow] {
        var v = Verifier(t: t, desired: try desired(t), names: KernelNames(t), handle: handle, firewall: firewall)
        var rows: [VerifyRow] = []
        for (i, e) in t.expectations.enumerated() {
            let row = v.row(i + 1, e)
            progress?(row)
            rows.append(row)
        }
        return rows
    }
}

extension Verifier {
    /// One expectation, run: a row that says what was seen (a probe that could not run fails).
    mutating func row(_ index: Int, _ e: Topology.Expectation) -> VerifyRow {
        var row = VerifyRow(index: index, kind: "", from: "", to: "", passed: false, detail: "", location: e.location.description)
        do {
            switch e {
            case .reach(let f, let to, let probes, let port, _):
                try reach(&row, from: f, to: to, probes: probes, port: port, expectAnswer: true)
            case .noReach(let f, let to, let probes, let port, _):
                try reach(&row, from: f, to: to, probes: probes, port: port, expectAnswer: false)
            case .bandwidth(let f, let to, let rate, let tolerance, let seconds, _):
                try bandwidth(&row, from: f, to: to, rate: rate, tolerance: tolerance, seconds: seconds)
            case .spoof(let f, let kinds, let count, _):
                try spoof(&row, from: f, kinds: kinds, count: count)
            case .configured(let host, _):
                try configured(&row, host: host)
            }
        } catch {
            row.passed = false
            row.detail = "could not probe: \(error)"
        }
        return row
    }
}

/// Runs expectations one by one; endpoints are resolved once each.
struct Verifier {
    let t: Topology
    let desired: DesiredFabric
    let names: KernelNames
    /// The fabric's route socket (VNIC counters) and nftables socket (protection counters).
    let handle: NetlinkHandle
    let firewall: Firewall
    var cache: [String: ResolvedEndpoint] = [:]
    /// Guests that have sent once: under TCG the first transfer also pays for translating the
    /// guest's network code, so it is not the one measured.
    var primed: Set<String> = []

    init(t: Topology, desired: DesiredFabric, names: KernelNames, handle: NetlinkHandle, firewall: Firewall) {
        self.t = t
        self.desired = desired
        self.names = names
        self.handle = handle
        self.firewall = firewall
    }

    mutating func resolve(_ ref: Topology.EndpointRef) throws -> ResolvedEndpoint {
        if let r = cache[ref.description] { return r }
        let host = t.tenants.first { $0.name == ref.tenant }!.hosts.first { $0.name == ref.host }!
        let v = ref.vnic.map { n in host.vnics.first { $0.name == n }! } ?? host.vnics[0]
        let dev = names.hostDevice(host: host.name, vnic: v.name)
        guard let d = desired.vnics.first(where: { $0.hostDevice.rawValue == dev }) else { throw VerifyError("\(ref) names no VNIC of the topology") }
        let ip = v.ips.first { $0.address.isV4 }!.address
        let r: ResolvedEndpoint
        if let vm = desired.vms.first(where: { $0.host == host.name }) {
            guard let s = VMLauncher.status(directory: vm.directory), s.state != "stopped" else {
                throw VerifyError("\(ref) is a VM that is not running; run `quiver apply` first")
            }
            // A guest that was just started may still be booting: wait for its agent.
            let agent: GuestShell
            switch vm.spec.agentKind {
            case .quiver: agent = try GuestAgent.waitReady(socketPath: GuestDirectory.file(.agent, in: vm.directory), timeout: 120)
            case .qga:
                let qga = try QGAClient.waitReady(socketPath: GuestDirectory.file(.guestAgent, in: vm.directory), timeout: 240)
                // The agent answers before the guest has finished booting (cloud-init's last stage
                // can still be running, and a TCG guest short of CPU sends below its cap): wait for
                // systemd to say the boot is over ("running" or "degraded"), where it has systemd.
                _ = try? qga.exec("/bin/sh", ["-c", "command -v systemctl >/dev/null || exit 0; timeout 240 systemctl is-system-running --wait"], timeout: 250)
                agent = qga
            case .none: throw VerifyError("\(ref) is a VM with `agent: none`: nothing inside it can probe; give it `agent: qga`")
            }
            r = ResolvedEndpoint(ref: ref, namespace: nil, agent: agent, device: d.name, hostDevice: d.hostDevice, bridge: d.bridge,
                                 mac: d.mac!, ipv4: ip, mtu: v.mtu ?? 1500)
        } else {
            let ns = NetworkNamespace.named(d.namespace)
            guard ns.exists else { throw VerifyError("\(ref) is not applied (no namespace \(d.namespace)); run `quiver apply` first") }
            let link = try NetlinkHandle(namespace: ns).link(named: d.name)
            r = ResolvedEndpoint(ref: ref, namespace: ns, agent: nil, device: d.name, hostDevice: d.hostDevice, bridge: d.bridge,
                                 mac: link.mac ?? d.mac!, ipv4: ip, mtu: link.mtu)
        }
        cache[ref.description] = r
        return r
    }

    mutating func reach(_ row: inout VerifyRow, from f: Topology.EndpointRef, to: Topology.EndpointRef,
                        probes: [Topology.ReachProbe], port: UInt16, expectAnswer: Bool) throws {
        row.kind = (expectAnswer ? "reach" : "no-reach") + " (" + probes.map(\.rawValue).joined(separator: ",") + ")"
        row.from = f.description
        row.to = to.description
        let a = try resolve(f), b = try resolve(to)
        var notes: [String] = []
        var ok = true
        for p in probes {
            let o = try Self.reach(p, from: a, to: b, port: port)
            ok = ok && (o.answered == expectAnswer)
            notes.append("\(p.rawValue): \(o.detail)")
        }
        row.passed = ok
        row.detail = notes.joined(separator: "; ")
    }

    mutating func bandwidth(_ row: inout VerifyRow, from f: Topology.EndpointRef, to: Topology.EndpointRef,
                            rate: Bitrate, tolerance: Double, seconds: Double) throws {
        row.kind = "bandwidth \(rate) ±\(Int((tolerance * 100).rounded()))%"
        row.from = f.description
        row.to = to.description
        let a = try resolve(f), b = try resolve(to)
        let want = Double(rate.bitsPerSecond)
        let wire: Double, completed: Bool, how: String
        var senderBound = false
        var earlier: [Double] = []
        if let bns = b.namespace {
            var r: TCPBulk.Result
            // Caps count whole frames; TCP goodput carries (MTU - 52) of every (MTU + 14) bytes.
            let mtu = Double(min(a.mtu, b.mtu))
            if let ans = a.namespace {
                r = try TCPBulk(from: ans, to: bns, address: b.ipv4, port: 5201, duration: seconds + 1, warmup: 1).run()
            } else {
                // busybox nc in the guest sends /dev/zero (no pipe: under TCG a `cat |` in front
                // costs the guest most of its rate); the receiver times the bytes. Its cap class
                // tells a slow sender from a wrong cap: a class that never went over its rate
                // was not what held the transfer back.
                let overlimits = { [desired, handle] in
                    try Self.capClasses(of: a.hostDevice, .fromEndpoint, desired, handle).map(\.usage.statistics.overlimits)
                }
                if primed.insert(a.ref.description).inserted {
                    let warm = try TCPSink(in: bns, address: b.ipv4, port: 5201, seconds: 2)
                    _ = try a.agent!.run("timeout 2 nc \(b.ipv4) 5201 </dev/zero", timeout: 12)
                    _ = warm.finish(warmup: 0, until: 2)
                }
                func transfer() throws -> TCPBulk.Result {
                    let sink = try TCPSink(in: bns, address: b.ipv4, port: 5201, seconds: seconds + 1)
                    let over0 = try overlimits()
                    _ = try a.agent!.run("timeout \(Int(seconds.rounded(.up)) + 1) nc \(b.ipv4) 5201 </dev/zero",
                                         timeout: seconds + 10)
                    let r = sink.finish(warmup: 1, until: seconds + 1)
                    senderBound = try !over0.isEmpty && over0 == overlimits()
                    return r
                }
                // A guest's TCP gets no backpressure from the host's queues, and under TCG on a
                // busy machine one stall or retransmission timeout costs a 3 s transfer a third of
                // its bytes. A transfer that read below the tolerance is run once more; the row
                // shows both readings and passes on the second only. A cap that is too tight
                // reads low twice; one that is too loose fails at once.
                r = try transfer()
                if r.bitsPerSecond * (mtu + 14) / (mtu - 52) < (1 - tolerance) * want {
                    earlier.append(r.bitsPerSecond * (mtu + 14) / (mtu - 52))
                    r = try transfer()
                }
            }
            wire = r.bitsPerSecond * (mtu + 14) / (mtu - 52)
            completed = r.completed
            how = String(format: " (TCP goodput %.2f", r.bitsPerSecond / 1e6) + (a.agent.map { ", nc in the guest via \($0.name))" } ?? ")")
        } else if let ans = a.namespace {
            // Towards a guest: busybox nc listens in it; the rate is what its cap let through —
            // the bytes its class on the tenant's inbound IFB sent (whole frames, what the cap
            // counts) — or, uncapped, what its tap transmitted. (A macvtap counts frames as
            // received before its ingress hook hands them to the shaper, so only the class
            // shows what reached the guest.)
            _ = try b.agent!.run("nc -l \(b.qga ? "" : "-p ")5201 >/dev/null 2>&1 </dev/null &", timeout: 5)
            let tap = b.hostDevice
            let vnic = desired.vnics.first { $0.hostDevice == b.hostDevice }
            let capped = desired.capGroups.contains { $0.members.contains { $0.device == b.hostDevice } }
            func delivered() throws -> UInt64 {
                if capped {
                    return try Self.capClasses(of: b.hostDevice, .toEndpoint, desired, handle).first { $0.isMember }?.usage.statistics.bytes ?? 0
                }
                guard let s = try handle.link(named: tap).statistics, let vnic else { return 0 }
                return vnic.endpointCounters(s).receivedBytes
            }
            let source = TCPSource(from: ans, address: b.ipv4, port: 5201, seconds: seconds + 1, connectWithin: 3)
            let sending = Background { try source.run() }
            Thread.sleep(forTimeInterval: 1)
            let t0 = Date(), bytes0 = try delivered()
            Thread.sleep(forTimeInterval: seconds - 0.1)
            let bytes1 = try delivered()
            wire = Double(bytes1 &- bytes0) * 8 / Date().timeIntervalSince(t0)
            completed = try sending.wait().get()
            how = capped ? " (sent by its inbound cap class)" : " (counted at \(b.hostDevice))"
        } else {
            throw VerifyError("bandwidth between two guests is not supported; measure from or to a namespace host")
        }
        row.passed = completed && abs(wire - want) <= tolerance * want
        row.detail = String(format: "%.2f Mbit/s on the wire%@ = %.3f of %@ over %.0f s",
                            wire / 1e6, how, wire / want, rate.description, seconds)
            + (completed ? "" : "; the transfer did not complete")
            + earlier.map { String(format: "; a first transfer read %.2f Mbit/s (%.3f), below the tolerance, so it ran again", $0 / 1e6, $0 / want) }.joined()
            + (!row.passed && senderBound && wire < want
               ? "; no cap class was ever over its rate: the guest could not send faster than this, the cap did not hold it back" : "")
    }

    /// The shaping classes one direction of `device` goes through, in the cap group that holds it
    /// (empty when the device is not capped that way): its own class (`isMember`), its flows'
    /// classes and its tenant's aggregate.
    static func capClasses(of device: InterfaceName, _ direction: Direction, _ desired: DesiredFabric,
                           _ handle: NetlinkHandle) throws -> [(usage: ClassUsage, isMember: Bool)] {
        guard let group = desired.capGroups.first(where: { $0.members.contains { $0.device == device } }),
              let member = group.members.first(where: { $0.device == device }) else { return [] }
        return try Shaper(handle: handle).status(group)
            .filter { $0.direction == direction && ($0.label == member.name || $0.label.hasPrefix(member.name + "/") || $0.label == "aggregate") }
            .map { ($0, $0.label == member.name) }
    }

    mutating func spoof(_ row: inout VerifyRow, from f: Topology.EndpointRef, kinds: [Topology.SpoofKind], count: Int) throws {
        row.kind = "spoof (" + kinds.map(\.rawValue).joined(separator: ",") + ") ×\(count)"
        row.from = f.description
        row.to = "every endpoint on its switch"
        let a = try resolve(f)
        guard let v = desired.vnics.first(where: { $0.hostDevice == a.hostDevice }) else { throw VerifyError("\(a.ref) names no VNIC of the topology") }
        // (On a switch that spans nodes: the endpoints of other nodes that share this host too.)
        let peers = desired.vnics.filter { $0.bridge == a.bridge && $0.hostDevice != a.hostDevice && !$0.isVM && NetworkNamespace.named($0.namespace).exists }
        let listeners = try peers.map { try PacketSocket(in: .named($0.namespace), device: $0.name.rawValue) }
        let sender = try a.namespace.map { try PacketSocket(in: $0, device: a.device.rawValue) }
        var ok = true
        var notes: [String] = []
        for k in kinds {
            let kind = ProtectionKind.allCases.first { $0.counter == k.counter }!
            guard v.protection.contains(kind) else {
                ok = false
                notes.append("\(k.rawValue): \(kind.rawValue) is off for this VNIC")
                continue
            }
            let counter = Ruleset.counter(device: a.hostDevice.rawValue, kind)
            let before = try firewall.counters(table: names.firewallTable)[counter]?.packets ?? 0
            listeners.forEach { $0.drain() }
            let delivered: Int
            if let sender {
                let marker = Frames.marker()
                sender.send(Self.forged(k, from: a, allowed: v.allowed, marker: marker), count: count)
                delivered = listeners.reduce(0) { $0 + $1.count(containing: marker, expected: count, quietSeconds: 0.2) }
            } else if let qga = a.agent as? QGAClient {
                // The same frames as from a namespace, sent by python3 inside the guest.
                let marker = Frames.marker()
                try Self.sendFromGuest(qga, device: a.device.rawValue, frame: Self.forged(k, from: a, allowed: v.allowed, marker: marker), count: count)
                delivered = listeners.reduce(0) { $0 + $1.count(containing: marker, expected: count, quietSeconds: 0.3) }
                if !notes.contains(where: { $0.hasPrefix("sent by") }) { notes.append("sent by python3 in the guest (qemu-guest-agent)") }
            } else {
                // Aimed at a namespace host on the same switch or lower link (which listens), else
                // at another guest there (then only the counter shows what happened).
                let aims = peers + desired.vnics.filter { $0.bridge == a.bridge && $0.hostDevice != a.hostDevice && $0.isVM }
                guard let peer = aims.first(where: { t.address(ofHostDevice: $0.hostDevice.rawValue) != nil && $0.mac != nil }),
                      let peerIP = t.address(ofHostDevice: peer.hostDevice.rawValue), let peerMAC = peer.mac else {
                    ok = false
                    notes.append("\(k.rawValue): no other endpoint with an IPv4 address on its switch or link to aim at")
                    continue
                }
                if listeners.isEmpty && !notes.contains(where: { $0.hasPrefix("aimed at") }) {
                    notes.append("aimed at guest \(peer.tenant)/\(peer.host), no namespace host listens: the counters tell")
                }
                guard let (command, needle) = Self.forgedFromGuest(k, from: a, allowed: v.allowed, count: count, peerIP: peerIP, peerMAC: peerMAC) else {
                    ok = false
                    notes.append("\(k.rawValue): cannot be forged from inside a guest (busybox has no tool for it)")
                    continue
                }
                _ = try a.agent!.run(command, timeout: Double(count) * 0.02 + 10)
                delivered = listeners.reduce(0) { $0 + $1.count(containing: needle, expected: count, quietSeconds: 0.3) }
            }
            let after = try firewall.counters(table: names.firewallTable)[counter]?.packets ?? 0
            let grew = after &- before
            ok = ok && delivered == 0 && grew == UInt64(count)
            notes.append("\(k.rawValue): \(delivered) delivered, \(counter) +\(grew)")
        }
        row.passed = ok
        row.detail = notes.joined(separator: "; ")
    }

    /// A reachability probe from a namespace, or through a guest's agent with busybox tools.
    static func reach(_ p: Topology.ReachProbe, from a: ResolvedEndpoint, to b: ResolvedEndpoint, port: UInt16) throws -> Reach.Outcome {
        if let ns = a.namespace {
            switch p {
            case .icmp: return try Reach.icmpEcho(from: ns, to: b.ipv4)
            case .tcp:
                if let target = b.namespace { return try Reach.tcpConnect(from: ns, to: b.ipv4, port: port, targetNamespace: target) }
                return try Reach.tcpConnect(from: ns, to: b.ipv4, port: port, targetNamespace: nil)
            case .arp: return try Reach.arp(from: ns, device: a.device.rawValue, senderMAC: a.mac, senderIP: a.ipv4, target: b.ipv4)
            }
        }
        let agent = a.agent!
        switch p {
        case .icmp:
            let r = try agent.run("ping -c 3 -W 1 \(b.ipv4)", timeout: 10)
            return Reach.Outcome(answered: r.status == 0, detail: r.status == 0 ? "echo reply (from the guest, via \(agent.name))" : "no echo reply to 3 requests (from the guest, via \(agent.name))")
        case .tcp:
            let listener = try b.namespace.map { try Reach.listen(in: $0, on: b.ipv4, port: port) }
            defer { listener?.close() }
            // OpenBSD netcat checks a port with -z; busybox nc connects and sees stdin end.
            let r = try agent.run(a.qga ? "nc -z -w 2 \(b.ipv4) \(port)" : "nc -w 2 \(b.ipv4) \(port) </dev/null", timeout: 10)
            let refused = r.output.contains("refused")
            return Reach.Outcome(answered: r.status == 0 || refused,
                                 detail: r.status == 0 ? "connected to port \(port) (from the guest, via \(agent.name))"
                                     : refused ? "port \(port) refused (the host answered)" : "no answer to SYN (from the guest, via \(agent.name))")
        case .arp:
            let r = try agent.run("arping -c 2 -w 3 -I \(a.device) \(b.ipv4)", timeout: 10)
            return Reach.Outcome(answered: r.status == 0, detail: r.status == 0 ? "ARP reply (from the guest, via \(agent.name))" : "no ARP reply (from the guest, via \(agent.name))")
        }
    }

    /// A guest forges frames with its own tools: a foreign source MAC (ping with the NIC's MAC
    /// changed) or a foreign source address (ping from an added address). The peer's neighbour
    /// entry is set by hand, so the only frames sent are the `count` echo requests. Returns the
    /// command and the bytes that mark those frames on the wire.
    static func forgedFromGuest(_ kind: Topology.SpoofKind, from a: ResolvedEndpoint, allowed: [IPPrefix], count: Int,
                                peerIP: IPAddress, peerMAC: MACAddress) -> (String, [UInt8])? {
        // busybox `ip neigh` cannot add entries; `arp -s` makes a permanent one. A MAC change
        // flushes even permanent entries, so it goes in after the change.
        let neigh = "arp -i \(a.device) -s \(peerIP) \(peerMAC)"
        let unneigh = "arp -i \(a.device) -d \(peerIP)"
        let ping = "ping -c \(count) -i 0.01 -W 1 -q"
        switch kind {
        case .mac:
            let foreign = foreignMAC(a)
            return ("ip link set \(a.device) address \(foreign); \(neigh); \(ping) \(peerIP); ip link set \(a.device) address \(a.mac)",
                    foreign.bytes)
        case .ip:
            let foreign = foreignIP(a, allowed: allowed)
            // Source address and destination, as they sit in the IPv4 header.
            return ("\(neigh); ip addr add \(foreign)/32 dev \(a.device); \(ping) -I \(foreign) \(peerIP); ip addr del \(foreign)/32 dev \(a.device); \(unneigh)",
                    foreign.bytes + peerIP.bytes)
        case .arp, .ethertype:
            return nil
        }
    }

    /// A source MAC that is not `a`'s (locally administered, derived from it).
    static func foreignMAC(_ a: ResolvedEndpoint) -> MACAddress {
        MACAddress(0x02, 0xde, 0xad, 0xbe, 0xef, a.mac.bytes[5] ^ 0xff)
    }

    /// A source address `a` may not use: a neighbour of its own address, else one from the
    /// benchmarking range (198.18.0.0/15), which no topology should allow.
    static func foreignIP(_ a: ResolvedEndpoint, allowed: [IPPrefix]) -> IPAddress {
        var b = a.ipv4.bytes
        b[3] ^= 0x80
        let candidates = [IPAddress.v4(b), IPAddress(198, 18, 0, 1)]
        return candidates.first { c in !allowed.contains { $0.contains(c) } } ?? candidates[1]
    }

    /// A forged frame of `kind` from `a`, broadcast on its switch.
    static func forged(_ kind: Topology.SpoofKind, from a: ResolvedEndpoint, allowed: [IPPrefix], marker: [UInt8]) -> [UInt8] {
        let foreignMAC = foreignMAC(a)
        let foreignIP = foreignIP(a, allowed: allowed)
        let broadcast = IPAddress(255, 255, 255, 255)
        switch kind {
        case .mac: return Frames.udp4(dstMAC: Frames.broadcast, srcMAC: foreignMAC, src: a.ipv4, dst: broadcast, marker)
        case .ip: return Frames.udp4(dstMAC: Frames.broadcast, srcMAC: a.mac, src: foreignIP, dst: broadcast, marker)
        case .arp: return Frames.arpRequest(ethernetSource: a.mac, senderMAC: a.mac, senderIP: foreignIP, target: a.ipv4, marker: marker)
        case .ethertype: return Frames.raw(dst: Frames.broadcast, src: a.mac, type: 0x88B5, marker)
        }
    }
}

public struct VerifyError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
