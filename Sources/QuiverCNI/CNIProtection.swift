import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProtection
import QuiverValues

/// Chained `protection`: the attachment's own tables (``PortGuard``) — `bridge` when another
/// plugin put the host-side device on a bridge, `inet` + `arp` when it is routed (`ptp`) — named
/// `qcni-HASH` (HASH: of the tag) and tagged `quiver:cni/CONTAINERID/IFNAME` in its comment — the
/// full tag, not the hash, proves it is this attachment's. The MAC is the container interface's
/// as the kernel has it; the allowed addresses are `prevResult`'s addresses of that interface.
extension CNIAttachment {
    var guardTable: String { "qcni-" + StableHash.hex32(tag) }

    /// The addresses `prevResult` gives the container's `ifname` (an entry of `ips` whose
    /// `interface` is the index of an entry of `interfaces` with that name and a `sandbox`; every
    /// entry when none says), each as a host prefix.
    static func containerAddresses(_ prev: [String: Any], ifname: InterfaceName) throws(CNIError) -> [IPPrefix] {
        let interfaces = prev["interfaces"] as? [[String: Any]] ?? []
        var out: [IPPrefix] = []
        for ip in prev["ips"] as? [[String: Any]] ?? [] {
            if let i = ip["interface"] as? Int {
                guard interfaces.indices.contains(i), interfaces[i]["name"] as? String == ifname.rawValue,
                      (interfaces[i]["sandbox"] as? String).map({ !$0.isEmpty }) == true else { continue }
            }
            let text = ip["address"] as? String ?? ""
            do { out.append(try IPPrefix(text).address.hostPrefix) } catch {
                throw CNIError(.invalidConfig, "prevResult's address \(InvalidValue.quoted(text, limit: 60)): \(error)")
            }
        }
        return out
    }

    /// The guard for `device`: a bridge port gets a `bridge` table, a routed device (no master,
    /// as `ptp` leaves it) an `inet` and an `arp` table. A device enslaved to anything else (a
    /// bond, a VRF) is refused: its frames' path is not one Quiver has tested.
    func portGuard(device: Link, mac: MACAddress, allowed: [IPPrefix], protection: [ProtectionKind], host: NetlinkHandle) throws -> PortGuard {
        var placement = PortGuard.Placement.routed
        if let master = device.masterIndex {
            let kind = try host.links(statistics: false).first(where: { $0.index == master })?.kind
            guard kind == "bridge" else {
                throw CNIError(.invalidConfig, "protection needs \(device.name), the host side of \(containerID)/\(ifname), on a bridge or routed",
                               details: "it is enslaved to a \(kind ?? "device") that quiver-cni does not protect through")
            }
            placement = .bridgePort
        }
        return PortGuard(table: guardTable, ownerTag: tag, port: ProtectedPort(
            device: device.name, tenant: "cni", mac: mac, protection: Set(protection), allowed: allowed,
            // The runtime, not Quiver, decides whether the container speaks IPv6; a kernel that
            // gives it a link-local address sends neighbour discovery and MLD from it.
            ipv6: true), placement: placement)
    }

    /// ADD: installs the guard (changes nothing when it is current); CHECK: fails unless the
    /// kernel holds exactly it. With no protection configured, ADD removes an earlier guard and
    /// CHECK fails while one is left.
    func protect(_ g: PortGuard?, check: Bool, firewall: Firewall) throws {
        do {
            guard let g else {
                if check {
                    if let f = try firewall.tables(of: guardTable, ownerTag: tag).keys.first {
                        throw CNIError(.checkFailed, "\(containerID)/\(ifname) has protection rules (table \(f.name) \(guardTable)) that are not configured")
                    }
                } else {
                    try firewall.removePortGuard(table: guardTable, ownerTag: tag)
                }
                return
            }
            if check {
                guard try firewall.isCurrent(g) else {
                    throw CNIError(.checkFailed, "the protection rules of \(containerID)/\(ifname) on \(g.port.device) are not as configured",
                                   details: "table \(g.families.map(\.name).joined(separator: " and ")) \(g.table) is missing or differs; ADD makes it again")
                }
            } else {
                try firewall.install(g)
            }
        } catch let e as ForeignTableError {
            throw CNIError(.conflict, "\(e)")
        }
    }

    /// A table of the guard's name that is not this attachment's is a conflict (code 100).
    func guardTableIsNotForeign(_ firewall: Firewall) throws {
        do { _ = try firewall.tables(of: guardTable, ownerTag: tag) } catch let e as ForeignTableError {
            throw CNIError(.conflict, "\(e)", details: "quiver-cni changed nothing")
        }
    }

    /// DEL: the guard goes if it is this attachment's; a table of that name that is not is left.
    func removeGuard(host: NetworkNamespace?) throws {
        do { try Firewall(namespace: host).removePortGuard(table: guardTable, ownerTag: tag) } catch is ForeignTableError {}
    }

    /// GC: every guard tagged by quiver-cni for an attachment not in `keep`, by its comment's tag.
    static func staleGuards(keep: Set<String>, host: NetworkNamespace?) throws -> [(table: String, attachment: CNIAttachment)] {
        var seen = Set<String>()
        return try Firewall(namespace: host).handle.nftTables().compactMap { t in
            guard PortGuard.allFamilies.contains(t.family), let tag = t.comment?.split(separator: " ").first.map(String.init), let a = parse(tag: tag),
                  t.name == a.guardTable, !keep.contains(a.memberName), seen.insert(t.name).inserted else { return nil }
            return (t.name, a)
        }
    }
}
