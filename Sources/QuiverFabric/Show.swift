import QuiverKernel
import QuiverNetlink
import QuiverTopology

/// One row of `quiver show`, like `dladm show-vnic`.
public struct VNICRow: Sendable, Codable, Equatable {
    public var vnic: String
    public var tenant: String
    public var host: String
    public var over: String
    public var link: String
    public var macaddress: String
    public var ips: [String]
    public var maxbw: String
    public var floor: String
    public var state: String
}

extension Fabric {
    /// The topology's VNICs as the kernel has them (MAC and state read back; "missing" when not applied).
    public func show(_ t: Topology) throws -> [VNICRow] {
        let desired = try DesiredFabric(t)
        let names = KernelNames(t)
        let byDevice = Dictionary(desired.vnics.map { ($0.hostDevice.rawValue, $0) }, uniquingKeysWith: { a, _ in a })
        let links = Dictionary(try handle.links().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let existing = Set(NetworkNamespace.listNamed())
        let namespaces = Array(Set(desired.vnics.map(\.namespace))).filter { existing.contains($0) }.sorted()
        var hostLinks: [String: [Link]] = [:]
        // A namespace deleted between the listing and the read (a destroy running meanwhile) is
        // one whose ends are gone: its rows show no peer, not an error for the whole table.
        let handles = (try? NetlinkHandle.open(namespaces: namespaces.map(NetworkNamespace.named)))
            ?? namespaces.map { try? NetlinkHandle(namespace: .named($0)) }
        for (ns, h) in zip(namespaces, handles) {
            guard let h else { continue }
            do { hostLinks[ns] = try h.links() } catch where !NetworkNamespace.named(ns).exists { continue }
        }
        var rows: [VNICRow] = []
        for tenant in t.tenants {
            for host in tenant.hosts {
                for v in host.vnics {
                    guard let d = byDevice[names.hostDevice(host: host.name, vnic: v.name)] else { continue }
                    let hostSide = links[d.hostDevice.rawValue]
                    let peer = hostLinks[d.namespace]?.first { $0.name == d.name.rawValue }
                    let state: String
                    if let l = hostSide, names.owns(l) {
                        state = l.operState == .unknown ? (l.isUp ? "up" : "down") : l.operState.description
                    } else {
                        state = "missing"
                    }
                    rows.append(VNICRow(vnic: v.name, tenant: tenant.name, host: host.name, over: v.over, link: d.hostDevice.rawValue,
                                        macaddress: (peer?.mac ?? d.mac)?.description ?? "random",
                                        ips: v.ips.map(\.description), maxbw: v.maxbw?.description ?? tenant.maxbw.map { "(\($0))" } ?? "--",
                                        floor: v.floor?.description ?? "--", state: state))
                }
            }
        }
        return rows
    }
}
