import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverValues

/// Main-plugin mode's switch: a bridge on the node that quiver-cni makes (tagged
/// `quiver:cni-switch/NAME`) or one a Quiver topology made (tag `quiver:…`); never a foreign one.
/// Its ports' isolation and protection are one nftables `bridge` table, `cni-NAME`, rebuilt from
/// the switch's record (`switch-NAME.json`, ``CNIRecords``) on every ADD and DEL — tenants as in
/// topology files: a port's frames reach only ports of its tenant.
struct CNISwitch {
    var name: InterfaceName
    var tag: String { "quiver:cni-switch/" + name.rawValue }
    var table: String { "cni-" + name.rawValue }
    var recordName: String { "switch-\(name.rawValue).json" }

    /// One attachment on the switch, as recorded.
    struct Port: Codable, Equatable {
        var attachment: String
        var device: String
        var tenant: String
        var mac: MACAddress
        var allowed: [IPPrefix]
        var protection: [ProtectionKind]
    }

    /// The bridge, made when missing; a bridge that is not Quiver's is a conflict.
    func ensure(on host: NetlinkHandle) throws -> Link {
        if let l = try host.linkIfPresent(named: name) {
            guard l.kind == "bridge", l.alias?.hasPrefix("quiver:") == true else {
                throw CNIError(.conflict, "\(name) is a \(l.kind ?? "device") that is not Quiver's (alias \(InvalidValue.quoted(l.alias ?? "")))",
                               details: "quiver-cni attaches only to a switch it or a Quiver topology made; name another switch")
            }
            return l
        }
        try host.addLink(name, Bridge(), LinkSettings(up: true, alias: tag))
        return try host.link(named: name)
    }

    func ports() throws -> [Port] {
        try CNIRecords.read(recordName, as: [Port].self) ?? []
    }

    /// Records `ports` and makes the switch's table hold exactly their rules (none: no table).
    func install(_ ports: [Port], on host: NetworkNamespace?) throws {
        let firewall = try Firewall(namespace: host)
        guard !ports.isEmpty else {
            // The last port gone: no table and no record (a later namespace may reuse the inode
            // the records directory is named after).
            try firewall.remove(table: table, ownerTag: tag)
            try CNIRecords.remove(recordName)
            return
        }
        try CNIRecords.write(recordName, ports)
        try firewall.install(ruleset(ports))
    }

    func ruleset(_ ports: [Port]) -> Ruleset {
        Ruleset(table: table, ownerTag: tag, ports: ports.map {
            ProtectedPort(device: $0.device, tenant: $0.tenant, mac: $0.mac, protection: Set($0.protection), allowed: $0.allowed,
                          ipv6: $0.allowed.contains { $0.address.bitWidth == 128 })
        })
    }

    /// CHECK: the table holds exactly what the record says.
    func isCurrent(on host: NetworkNamespace?) throws -> Bool {
        try Firewall(namespace: host).isCurrent(ruleset(ports()))
    }
}
