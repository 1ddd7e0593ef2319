import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import QuiverProtection

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

/// An endpoint of the applied topology, resolved from the kernel.
struct ResolvedEndpoint {
    var ref: Topology.EndpointRef
    var namespace: NetworkNamespace
    var device: String
    var hostDevice: String
    var bridge: String
    var mac: MACAddress
    var ipv4: IPAddress
    var mtu: UInt32
}

extension Fabric {
    /// Runs the topology's `expect:` block against what is applied. Probes run inside the
    /// endpoints' namespaces and address only the topology's own endpoints (or the switch's
    /// broadcast domain); each is bounded in count and time.
    public func verify(_ t: Topology, progress: ((VerifyRow) -> Void)? = nil) throws -> [VerifyRow] {
        let desired = DesiredFabric(t)
        let names = KernelNames(t.name)
        var cache: [String: ResolvedEndpoint] = [:]
        func resolve(_ ref: Topology.EndpointRef) throws -> ResolvedEndpoint {
            if let r = cache[ref.description] { return r }
            let host = t.tenants.first { $0.name == ref.tenant }!.hosts.first { $0.name == ref.host }!
            let v = ref.vnic.map { n in host.vnics.first { $0.name == n }! } ?? host.vnics[0]
            let d = desired.vnics.first { $0.tenant == ref.tenant && $0.host == ref.host && $0.name == v.name }!
            let ns = NetworkNamespace.named(d.namespace)
            guard ns.exists else { throw VerifyError("\(ref) is not applied (no namespace \(d.namespace)); run `quiver apply` first") }
            let link = try NetlinkHandle(namespace: ns).link(named: try InterfaceName(validating: d.name))
            let r = ResolvedEndpoint(ref: ref, namespace: ns, device: d.name, hostDevice: d.hostDevice, bridge: d.bridge,
                                     mac: link.mac ?? d.mac!, ipv4: v.ips.first { $0.address.isV4 }!.address, mtu: link.mtu)
            cache[ref.description] = r
            return r
        }

        var rows: [VerifyRow] = []
        for (i, e) in t.expectations.enumerated() {
            var row = VerifyRow(index: i + 1, kind: "", from: "", to: "", passed: false, detail: "", location: e.location.description)
            do {
                switch e {
                case .reach(let f, let to, let probes, let port, _), .noReach(let f, let to, let probes, let port, _):
                    let expectAnswer: Bool
                    if case .reach = e { expectAnswer = true } else { expectAnswer = false }
                    row.kind = (expectAnswer ? "reach" : "no-reach") + " (" + probes.map(\.rawValue).joined(separator: ",") + ")"
                    row.from = f.description
                    row.to = to.description
                    let a = try resolve(f), b = try resolve(to)
                    var notes: [String] = []
                    var ok = true
                    for p in probes {
                        let o: Reach.Outcome
                        switch p {
                        case .icmp: o = try Reach.icmpEcho(from: a.namespace, to: b.ipv4)
                        case .tcp: o = try Reach.tcpConnect(from: a.namespace, to: b.ipv4, port: port, targetNamespace: b.namespace)
                        case .arp: o = try Reach.arp(from: a.namespace, device: a.device, senderMAC: a.mac, senderIP: a.ipv4, target: b.ipv4)
                        }
                        ok = ok && (o.answered == expectAnswer)
                        notes.append("\(p.rawValue): \(o.detail)")
                    }
                    row.passed = ok
                    row.detail = notes.joined(separator: "; ")
                case .bandwidth(let f, let to, let rate, let tolerance, let seconds, _):
                    row.kind = "bandwidth \(rate) ±\(Int((tolerance * 100).rounded()))%"
                    row.from = f.description
                    row.to = to.description
                    let a = try resolve(f), b = try resolve(to)
                    let r = try TCPBulk(from: a.namespace, to: b.namespace, address: b.ipv4, port: 5201, duration: seconds + 1, warmup: 1).run()
                    // Caps count whole frames; TCP goodput carries (MTU - 52) of every (MTU + 14) bytes.
                    let mtu = Double(min(a.mtu, b.mtu))
                    let wire = r.bitsPerSecond * (mtu + 14) / (mtu - 52)
                    let want = Double(rate.bitsPerSecond)
                    row.passed = r.completed && abs(wire - want) <= tolerance * want
                    row.detail = String(format: "%.2f Mbit/s on the wire (TCP goodput %.2f) = %.3f of %@ over %.0f s",
                                        wire / 1e6, r.bitsPerSecond / 1e6, wire / want, rate.description, seconds)
                        + (r.completed ? "" : "; the transfer did not complete")
                case .spoof(let f, let kinds, let count, _):
                    row.kind = "spoof (" + kinds.map(\.rawValue).joined(separator: ",") + ") ×\(count)"
                    row.from = f.description
                    row.to = "every endpoint on its switch"
                    let a = try resolve(f)
                    let v = desired.vnics.first { $0.hostDevice == a.hostDevice }!
                    let peers = desired.vnics.filter { $0.bridge == a.bridge && $0.hostDevice != a.hostDevice }
                    let listeners = try peers.map { try PacketSocket(in: .named($0.namespace), device: $0.name) }
                    let sender = try PacketSocket(in: a.namespace, device: a.device)
                    var ok = true
                    var notes: [String] = []
                    for k in kinds {
                        let kind = ProtectionKind.allCases.first { $0.counter == k.counter }!
                        guard v.protection.contains(kind) else {
                            ok = false
                            notes.append("\(k.rawValue): \(kind.rawValue) is off for this VNIC")
                            continue
                        }
                        let counter = "\(a.hostDevice)/\(k.counter)"
                        let before = try firewall.handle.nftCounters(Ruleset.family, table: names.firewallTable)[counter]?.packets ?? 0
                        let marker = Frames.marker()
                        listeners.forEach { $0.drain() }
                        sender.send(Self.forged(k, from: a, allowed: v.allowed, marker: marker), count: count)
                        let delivered = listeners.reduce(0) { $0 + $1.count(containing: marker, expected: count, quietSeconds: 0.2) }
                        let after = try firewall.handle.nftCounters(Ruleset.family, table: names.firewallTable)[counter]?.packets ?? 0
                        let grew = after &- before
                        ok = ok && delivered == 0 && grew == UInt64(count)
                        notes.append("\(k.rawValue): \(delivered) delivered, \(counter) +\(grew)")
                    }
                    row.passed = ok
                    row.detail = notes.joined(separator: "; ")
                }
            } catch {
                row.passed = false
                row.detail = "could not probe: \(error)"
            }
            progress?(row)
            rows.append(row)
        }
        return rows
    }

    /// A forged frame of `kind` from `a`, broadcast on its switch.
    static func forged(_ kind: Topology.SpoofKind, from a: ResolvedEndpoint, allowed: [IPPrefix], marker: [UInt8]) -> [UInt8] {
        let foreignMAC = try! MACAddress(bytes: [0x02, 0xde, 0xad, 0xbe, 0xef, a.mac.bytes[5] ^ 0xff])
        // A source the VNIC may not use: a neighbour of its own address, else one from the
        // benchmarking range (198.18.0.0/15), which no topology should allow.
        var b = a.ipv4.bytes
        b[3] ^= 0x80
        let candidates = [try! IPAddress(bytes: b), try! IPAddress("198.18.0.1")]
        let foreignIP = candidates.first { c in !allowed.contains { $0.contains(c) } } ?? candidates[1]
        let broadcast = try! IPAddress("255.255.255.255")
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
