import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverValues

/// `"tenant": {"name": N, "maxbw": R}`: every attachment of tenant N on this node shares one cap
/// group — R each way in aggregate, each attachment a member with its own rates and its
/// `floor` — on two IFBs `qtf-N`/`qtt-N` tagged `quiver:cni-tenant/N`, as a topology's tenant
/// shares its switch's. Members are told apart by their container MAC. The group is recorded
/// in `/run/quiver/cni/net-INODE/tenant-N.json` (a cache: the kernel is the truth, the tag the owner).
public struct CNITenant: Sendable, Equatable {
    public var name: String
    public var maxbw: Bitrate

    public init(name: String, maxbw: Bitrate) {
        self.name = name
        self.maxbw = maxbw
    }

    public var tag: String { "quiver:cni-tenant/" + name }
    var recordName: String { "tenant-\(name).json" }

    /// From the configuration's `tenant` object; names are 1–11 of `a-z 0-9 -`, starting with
    /// a letter or digit (they become IFB names).
    init(json value: Any) throws(CNIError) {
        guard let o = value as? [String: Any], let n = o["name"] as? String else {
            throw CNIError(.invalidConfig, "tenant must be an object with a name", details: #"e.g. "tenant": {"name": "acme", "maxbw": "100M"}"#)
        }
        let ok = n.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        guard ok, (1...11).contains(n.count), n.first != "-" else {
            throw CNIError(.invalidConfig, "tenant name \(InvalidValue.quoted(n, limit: 40)) is not one quiver-cni accepts",
                           details: "1 to 11 of a-z, 0-9 and '-', not starting with '-'")
        }
        for k in o.keys where k != "name" && k != "maxbw" {
            throw CNIError(.unsupportedField, "tenant has no key \(InvalidValue.quoted(k, limit: 40))", details: "its keys: name, maxbw")
        }
        guard let m = o["maxbw"] else { throw CNIError(.invalidConfig, "tenant \(n) needs maxbw", details: "its aggregate cap each way, e.g. \"100M\"") }
        name = n
        maxbw = try Self.rate(m, "tenant.maxbw")
    }

    /// A rate as Quiver writes it ("100M") or in bits per second (a number).
    static func rate(_ v: Any, _ key: String) throws(CNIError) -> Bitrate {
        if let s = v as? String {
            do {
                let r = try Bitrate(s)
                guard !r.isBlocked else { throw CNIError(.invalidConfig, "\(key) 0 would block all traffic", details: "leave it out instead") }
                return r
            } catch let e as CNIError { throw e } catch { throw CNIError(.invalidConfig, "\(key): \(error)") }
        }
        if let n = v as? NSNumber, String(cString: n.objCType) != "c", n.doubleValue >= Double(CNIBandwidth.minimumRate),
           n.doubleValue == n.doubleValue.rounded(), n.doubleValue <= Double(Bitrate.maximum.bitsPerSecond) {
            return Bitrate(bitsPerSecond: n.uint64Value)
        }
        throw CNIError(.invalidConfig, "\(key) must be a rate such as \"100M\" or bits per second from \(CNIBandwidth.minimumRate)")
    }

    func group(members: [CapMember]) throws -> CapGroup {
        CapGroup(name: "cni-tenant/" + name, ifbFrom: try InterfaceName(validating: "qtf-" + name),
                 ifbTo: try InterfaceName(validating: "qtt-" + name), maxbw: maxbw, members: members, ownerTag: tag)
    }

    static func load(_ name: String) throws -> CapGroup? {
        try CNIAttachment.records(create: false)?.read("tenant-\(name).json").flatMap { try? JSONDecoder().decode(CapGroup.self, from: $0) }
    }

    /// Every tenant group recorded on this node.
    static func all() throws -> [CapGroup] {
        guard let dir = try CNIAttachment.records(create: false) else { return [] }
        return try dir.entries().filter { $0.hasPrefix("tenant-") && $0.hasSuffix(".json") }
            .compactMap { try dir.read($0).flatMap { try? JSONDecoder().decode(CapGroup.self, from: $0) } }
    }

    static func save(_ g: CapGroup) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        try CNIAttachment.records(create: true)!.write("tenant-\(g.name.dropFirst("cni-tenant/".count)).json", try e.encode(g))
    }

    /// `member` joins (or changes in) the tenant's group; the group is applied — or, with
    /// `compareOnly`, compared — as a whole.
    func join(_ member: CapMember, on host: NetlinkHandle, compareOnly: Bool = false) throws -> ShapingReport {
        var members = try Self.load(name)?.members.filter { $0.name != member.name } ?? []
        members.append(member)
        members.sort { $0.name < $1.name }
        let g = try group(members: members)
        var s = Shaper(handle: host)
        s.compareOnly = compareOnly
        let r: ShapingReport
        do { r = try s.apply(g) } catch let e as OwnershipConflict {
            throw CNIError(.conflict, "\(e)", details: "quiver-cni changed nothing; remove what is there, or leave this interface to its owner")
        }
        if !compareOnly { try Self.save(g) }
        return r
    }

    /// Takes attachment `name` out of every tenant group it is in: its device is detached (if
    /// still there), the rest of the group applied again; a group left empty is removed.
    static func leave(_ member: String, on host: NetlinkHandle) throws {
        for g in try all() where g.members.contains(where: { $0.name == member }) {
            let s = Shaper(handle: host)
            for m in g.members where m.name == member { _ = try? s.detach(device: m.device) }
            var rest = g
            rest.members.removeAll { $0.name == member }
            // Devices already gone (their pods deleted) leave with it.
            let present = Set(try host.links(statistics: false).map(\.name))
            rest.members.removeAll { !present.contains($0.device.rawValue) }
            if rest.members.isEmpty {
                try s.remove(rest)
                _ = try CNIAttachment.records(create: false)?.remove("tenant-\(g.name.dropFirst("cni-tenant/".count)).json")
            } else {
                try s.apply(rest)
                try save(rest)
            }
        }
    }
}
