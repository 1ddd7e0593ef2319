import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverValues

/// `quiver-cni`: one call of the CNI protocol — environment and stdin in, a result or an error
/// object out (SPEC.md 1.1.0). Chained after a plugin that made a veth pair (bridge, ptp), it
/// caps the pair's host side both ways and passes `prevResult` through.
public enum CNIPlugin {
    public struct Output {
        public var stdout: Data
        /// Notes for people (absurd bursts replaced, what an error means).
        public var stderr: [String] = []
        public var exitCode: Int32 = 0
    }

    /// Runs one call. `host` is the runtime's namespace (where the host-side devices are).
    public static func run(environment: [String: String], stdin: Data, host: NetworkNamespace? = nil) -> Output {
        var version = "1.1.0"
        do {
            let env = try CNIEnvironment(environment)
            let config = try CNIConfig(json: stdin, command: env.command)
            version = config.cniVersion
            var notes: [String] = []
            // VERSION touches nothing on the node: no lock.
            let out = try withNodeLock(env.command != .version) { () throws -> [String: Any]? in
                if let sw = config.switchName, [.add, .del, .check].contains(env.command) {
                    return try main(env, config, CNISwitch(name: sw), environment: environment, stdin: stdin, host: host, notes: &notes)
                }
                return try perform(env, config, host: host, notes: &notes)
            }
            // Unsorted: sorting the keys of a result costs more than the rest of its encoding.
            return Output(stdout: out.map { CNIJSONWriter.data($0) } ?? Data(), stderr: notes)
        } catch let e as CNIError {
            return failure(e, version: version)
        } catch {
            return failure(CNIError(.ioFailure, "\(error)"), version: version)
        }
    }

    static func failure(_ e: CNIError, version: String) -> Output {
        let v = CNIConfig.supportedVersions.contains(version) ? version : "1.1.0"
        return Output(stdout: CNIJSONWriter.data(e.json(cniVersion: v), sortedKeys: true),
                      stderr: ["quiver-cni: \(e)"], exitCode: 1)
    }

    static func perform(_ env: CNIEnvironment, _ config: CNIConfig, host: NetworkNamespace?, notes: inout [String]) throws -> [String: Any]? {
        switch env.command {
        case .version:
            return ["cniVersion": "1.1.0", "supportedVersions": CNIConfig.supportedVersions]
        case .status:
            // Ready when the runtime's namespace answers netlink and Quiver's run directory is
            // one Quiver would use.
            do {
                _ = try NetlinkHandle(namespace: host).links(statistics: false)
                _ = try CNIRecords.directory(create: false)
            } catch {
                throw CNIError(.notAvailable, "quiver-cni cannot work here", details: "\(error)")
            }
            return nil
        case .add, .check, .del:
            let a = CNIAttachment(containerID: env.containerID!, ifname: env.ifname!)
            let handle = try NetlinkHandle(namespace: host)
            if env.command == .del {
                try a.remove(on: handle)
                try CNITenant.leave([a.memberName], on: handle)
                try a.removeGuard(host: host)
                return nil
            }
            notes += config.bandwidth?.ignoredBursts ?? []
            guard let prev = config.prevResult else {
                throw CNIError(.invalidConfig, "quiver-cni runs chained: prevResult is missing",
                               details: "put it after a plugin that makes the interface (bridge, ptp) in a .conflist")
            }
            let (device, inside) = try CNIAttachment.hostDevice(netns: env.netns!, ifname: env.ifname!, host: handle)
            // Chained protection (in main-plugin mode the switch's table holds it). A table of its
            // name that is not this attachment's stops the ADD before the caps change anything.
            var guardRules: PortGuard?
            if config.switchName == nil, !config.protection.isEmpty {
                guard let mac = inside.mac else { throw CNIError(.invalidConfig, "the container's \(a.ifname) has no MAC address") }
                guardRules = try a.portGuard(device: device, mac: mac, allowed: try CNIAttachment.containerAddresses(prev, ifname: a.ifname),
                                             protection: config.protection, host: handle)
            }
            // Chained: one netfilter socket for the check before the caps and the rules after them.
            let firewall = config.switchName == nil ? try Firewall(namespace: host) : nil
            if let firewall { try a.guardTableIsNotForeign(firewall) }
            if let t = config.tenant {
                try tenantMember(a, t, config, device: device, containerMAC: inside.mac, handle: handle, check: env.command == .check)
            } else if config.bandwidth != nil || !config.flows.isEmpty {
                let g = try a.group(device: device, bandwidth: config.bandwidth, flows: config.flows)
                if env.command == .add {
                    try a.apply(g, on: handle)
                } else {
                    let r = try a.differences(g, on: handle)
                    guard r.isNoOp else {
                        throw CNIError(.checkFailed, "the caps of \(a.containerID)/\(a.ifname) on \(device.name) are not as configured",
                                       details: "an apply would create \(r.created), change \(r.changed) and delete \(r.deleted) tc objects")
                    }
                }
            } else if env.command == .add {
                // No rate and no flow: nothing to cap, and nothing left of an earlier ADD's caps.
                try a.remove(on: handle)
            }
            if let firewall { try a.protect(guardRules, check: env.command == .check, firewall: firewall) }
            guard env.command == .add else { return nil }
            var result = prev
            result["cniVersion"] = config.cniVersion
            return result
        case .gc:
            let handle = try NetlinkHandle(namespace: host)
            let keep = Set(config.validAttachments.map { "\($0.containerID)/\($0.ifname)" })
            let gone = try CNITenant.all().flatMap { g in g.members.filter { !keep.contains($0.name) }.map { (g.name, $0.name) } }
            try CNITenant.leave(Set(gone.map(\.1)), on: handle)
            for (group, member) in gone { notes.append("quiver-cni: GC took \(member) out of \(group)") }
            var stale: [String: CNIAttachment] = [:]
            for l in try handle.links(statistics: false) where l.kind == "ifb" {
                guard let tag = l.alias, let a = CNIAttachment.parse(tag: tag), !keep.contains("\(a.containerID)/\(a.ifname)") else { continue }
                stale[tag] = a
            }
            for (_, a) in stale.sorted(by: { $0.key < $1.key }) {
                try a.remove(on: handle)
                notes.append("quiver-cni: GC removed the caps of \(a.containerID)/\(a.ifname)")
            }
            for (table, a) in try CNIAttachment.staleGuards(keep: keep, host: host) {
                try a.removeGuard(host: host)
                notes.append("quiver-cni: GC removed the protection rules of \(a.containerID)/\(a.ifname) (tables \(table))")
            }
            return nil
        }
    }
}

extension CNIPlugin {
    /// Main-plugin mode: the pair, the addresses, the switch's rules — and the caps, as chained.
    static func main(_ env: CNIEnvironment, _ config: CNIConfig, _ sw: CNISwitch, environment: [String: String], stdin: Data,
                     host: NetworkNamespace?, notes: inout [String]) throws -> [String: Any]? {
        let a = CNIAttachment(containerID: env.containerID!, ifname: env.ifname!)
        switch env.command {
        case .add:
            let result = try CNIMainPlugin.add(a, config, sw, environment: environment, stdin: stdin, netns: env.netns!, host: host, notes: &notes)
            var chained = config
            chained.prevResult = result
            _ = try perform(env, chained, host: host, notes: &notes)
            return result
        case .check:
            try CNIMainPlugin.check(a, config, sw, netns: env.netns!, host: host)
            return try perform(env, config, host: host, notes: &notes)
        default:
            _ = try perform(env, config, host: host, notes: &notes)  // the caps
            try CNIMainPlugin.del(a, config, sw, environment: environment, stdin: stdin, host: host, notes: &notes)
            return nil
        }
    }

    /// ADD or CHECK of an attachment of `tenant`: a member of the tenant's group with its own
    /// rates (the tenant's cap where none is given) and floor. Its caps of an earlier ADD
    /// without a tenant go.
    static func tenantMember(_ a: CNIAttachment, _ t: CNITenant, _ config: CNIConfig, device: Link, containerMAC: MACAddress?,
                             handle: NetlinkHandle, check: Bool) throws {
        guard let mac = containerMAC else { throw CNIError(.invalidConfig, "the container's \(a.ifname) has no MAC address", details: "tenant members are told apart by MAC") }
        let b = config.bandwidth
        var m = CapMember(name: a.memberName, device: try InterfaceName(validating: device.name), mac: mac, maxbw: b?.egressRate,
                          floor: config.floor, flows: config.flows, burst: b?.egressBurstBytes)
        m.maxbwToEndpoint = b?.ingressRate
        m.burstToEndpoint = b?.ingressBurstBytes
        if check {
            let r = try t.join(m, on: handle, compareOnly: true)
            let recorded = try CNITenant.load(t.name)?.members.first { $0.name == m.name }
            guard r.isNoOp, recorded == m else {
                throw CNIError(.checkFailed, "the caps of \(a.containerID)/\(a.ifname) in tenant \(t.name) are not as configured",
                               details: recorded == m ? "an apply would create \(r.created), change \(r.changed) and delete \(r.deleted) tc objects"
                                   : "the tenant's group holds this attachment with other values, or not at all")
            }
            return
        }
        try a.remove(on: handle)
        _ = try t.join(m, on: handle)
    }
}

extension CNIPlugin {
    /// Concurrent calls on one node take turns: an exclusive `flock` on `/run/quiver/cni.lock`.
    static func withNodeLock<T>(_ needed: Bool = true, _ body: () throws -> T) throws -> T {
        guard needed else { return try body() }
        let dir = try TrustedDirectory.open(TrustedDirectory.runRoot, create: true)!
        let fd = try dir.openLockFile("cni.lock")
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        return try body()
    }
}
