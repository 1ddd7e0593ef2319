import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverValues

/// Main-plugin mode (`"switch"` in the configuration): quiver-cni makes the veth pair itself —
/// host side `qvXXXXXXXX` on the switch, tagged with the attachment, container side `CNI_IFNAME`
/// in `CNI_NETNS` — gets addresses from the IPAM plugin the configuration names (run from
/// `CNI_PATH`, as CNI plugins delegate), and puts the port under its tenant's isolation and the
/// configured protection.
enum CNIMainPlugin {
    static func hostName(_ a: CNIAttachment) throws -> InterfaceName {
        try InterfaceName(validating: "qv" + StableHash.hex32(a.tag))
    }

    /// The IPAM plugin's answer to the same call (ADD or DEL) with the same configuration.
    static func ipam(_ type: String, environment: [String: String], stdin: Data) throws -> [String: Any] {
        let dirs = (environment["CNI_PATH"] ?? "").split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
        guard let plugin = dirs.map({ "\($0)/\(type)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CNIError(.invalidConfig, "no IPAM plugin \(InvalidValue.quoted(type)) in CNI_PATH", details: "CNI_PATH is \(InvalidValue.quoted(environment["CNI_PATH"] ?? ""))")
        }
        let run = try Spawn.run([plugin], descriptors: [], captureOutput: true, environment: environment, input: [UInt8](stdin))
        let result = (try? JSONSerialization.jsonObject(with: run.stdout) as? [String: Any]) ?? [:]
        guard run.status == 0 else {
            throw CNIError(.ioFailure, "IPAM plugin \(type) failed: \(result["msg"] as? String ?? "exit \(run.status)")", details: result["details"] as? String ?? "")
        }
        return result
    }

    /// The IPAM result's addresses and routes, validated.
    static func addressing(_ r: [String: Any]) throws -> (ips: [(IPPrefix, IPAddress?)], routes: [(IPPrefix, IPAddress?)]) {
        func prefix(_ s: String) throws -> IPPrefix {
            do { return try IPPrefix(s) } catch { throw CNIError(.invalidConfig, "the IPAM result's address \(InvalidValue.quoted(s, limit: 60)): \(error)") }
        }
        func address(_ s: String?) throws -> IPAddress? {
            guard let s else { return nil }
            do { return try IPAddress(s) } catch { throw CNIError(.invalidConfig, "the IPAM result's gateway \(InvalidValue.quoted(s, limit: 60)): \(error)") }
        }
        let ips = try ((r["ips"] as? [[String: Any]]) ?? []).map { (try prefix($0["address"] as? String ?? ""), try address($0["gateway"] as? String)) }
        let routes = try ((r["routes"] as? [[String: Any]]) ?? []).map { (try prefix($0["dst"] as? String ?? ""), try address($0["gw"] as? String)) }
        return (ips, routes)
    }

    static func add(_ a: CNIAttachment, _ config: CNIConfig, _ sw: CNISwitch, environment: [String: String], stdin: Data,
                    netns: String, host: NetworkNamespace?, notes: inout [String]) throws -> [String: Any] {
        let handle = try NetlinkHandle(namespace: host)
        let bridge = try sw.ensure(on: handle)
        let hostSide = try hostName(a)
        if let l = try handle.linkIfPresent(named: hostSide), l.alias != a.tag {
            throw CNIError(.conflict, "\(hostSide) exists and is not this attachment's (alias \(InvalidValue.quoted(l.alias ?? "")))")
        }
        let ns = NetworkNamespace(path: netns)
        guard ns.exists else { throw CNIError(.unknownContainer, "the network namespace \(InvalidValue.quoted(netns, limit: 80)) does not exist") }
        let inside = try NetlinkHandle(namespace: ns)
        let ipamResult = try ipam(config.ipamType!, environment: environment, stdin: stdin)
        let (ips, routes) = try addressing(ipamResult)
        if try handle.linkIfPresent(named: hostSide) == nil {
            guard try inside.linkIfPresent(named: a.ifname) == nil else {
                throw CNIError(.conflict, "the container already has an interface \(a.ifname)")
            }
            let fd = try ns.open()
            defer { try? fd.close() }
            try handle.addLink(hostSide, Veth(peer: a.ifname, peerSettings: LinkSettings(namespace: .fd(fd.rawValue))),
                               LinkSettings(up: true, masterIndex: bridge.index, alias: a.tag))
        }
        try inside.setLink(a.ifname, LinkSettings(up: true))
        let have = Set(try inside.addresses(of: a.ifname).map(\.prefix))
        for (p, _) in ips where !have.contains(p) { try inside.addAddress(p, to: a.ifname) }
        let index = try inside.link(named: a.ifname).index
        for (dst, gw) in routes {
            let via = gw ?? ips.first { $0.0.address.bitWidth == dst.address.bitWidth }?.1
            try inside.addRoute(Route(destination: dst, gateway: via, outputIndex: index), replace: true)
        }
        let hostLink = try handle.link(named: hostSide), container = try inside.link(named: a.ifname)
        guard let mac = container.mac else { throw CNIError(.ioFailure, "\(a.ifname) has no MAC address") }
        var ports = try sw.ports().filter { $0.attachment != a.memberName }
        ports.append(.init(attachment: a.memberName, device: hostSide.rawValue, tenant: config.tenant?.name ?? "default", mac: mac,
                           allowed: ips.map(\.0), protection: config.protection))
        try sw.install(ports.sorted { $0.attachment < $1.attachment }, on: host)
        var result = ipamResult
        result["cniVersion"] = config.cniVersion
        result["interfaces"] = [["name": hostSide.rawValue, "mac": hostLink.mac?.description ?? ""],
                                ["name": a.ifname.rawValue, "mac": mac.description, "sandbox": netns]]
        result["ips"] = ((ipamResult["ips"] as? [[String: Any]]) ?? []).map { var ip = $0; ip["interface"] = 1; return ip }
        return result
    }

    static func del(_ a: CNIAttachment, _ config: CNIConfig, _ sw: CNISwitch, environment: [String: String], stdin: Data,
                    host: NetworkNamespace?, notes: inout [String]) throws {
        let handle = try NetlinkHandle(namespace: host)
        if let type = config.ipamType {
            do { _ = try ipam(type, environment: environment, stdin: stdin) } catch { notes.append("quiver-cni: IPAM DEL: \(error)") }
        }
        let hostSide = try hostName(a)
        if let l = try handle.linkIfPresent(named: hostSide), l.alias == a.tag { try handle.deleteLink(hostSide) }
        let before = try sw.ports()
        if before.contains(where: { $0.attachment == a.memberName }) {
            try sw.install(before.filter { $0.attachment != a.memberName }, on: host)
        }
    }

    /// CHECK: the pair is there and tagged, the container has its addresses, the switch's rules
    /// are exactly the record's.
    static func check(_ a: CNIAttachment, _ config: CNIConfig, _ sw: CNISwitch, netns: String, host: NetworkNamespace?) throws {
        let handle = try NetlinkHandle(namespace: host)
        let hostSide = try hostName(a)
        guard let l = try handle.linkIfPresent(named: hostSide), l.alias == a.tag else {
            throw CNIError(.checkFailed, "\(hostSide), the host side of \(a.containerID)/\(a.ifname), is missing")
        }
        guard let bridge = try handle.linkIfPresent(named: sw.name), l.masterIndex == bridge.index else {
            throw CNIError(.checkFailed, "\(hostSide) is not a port of \(sw.name)")
        }
        let inside = try NetlinkHandle(namespace: NetworkNamespace(path: netns))
        let want = try addressing(config.prevResult ?? [:]).ips.map(\.0)
        let have = Set(try inside.addresses(of: a.ifname).map(\.prefix))
        for p in want where !have.contains(p) { throw CNIError(.checkFailed, "\(a.ifname) in the container lacks \(p)") }
        guard try sw.isCurrent(on: host) else { throw CNIError(.checkFailed, "the rules of switch \(sw.name) (table \(sw.table)) are not as recorded") }
    }
}
