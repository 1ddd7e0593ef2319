import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverValues

/// `"tenant": {"name": N, "maxbw": R}`: every attachment of tenant N on this node shares one cap
/// group — R each way in aggregate, each attachment a member with its own rates and its
/// `floor` — on two IFBs `qtf-N`/`qtt-N` tagged `quiver:cni-tenant/N`, as a topology's tenant
/// shares its switch's. Members are told apart by their container MAC. The group is recorded
/// as `tenant-N.json` (``CNIRecords``: a cache; the kernel is the truth, the tag the owner).
public struct CNITenant: Sendable, Equatable {
    public var name: String
    public var maxbw: Bitrate

    public init(name: String, maxbw: Bitrate) {
        self.name = name
        self.maxbw = maxbw
    }

    public var tag: String { "quiver:cni-tenant/" + name }
    var recordName: String { Self.recordName(name) }
    static func recordName(_ tenant: String) -> String { "tenant-\(tenant).json" }
    /// The tenant a group made by ``group(members:)`` is of.
    static func tenant(of g: CapGroup) -> String { String(g.name.dropFirst("cni-tenant/".count)) }

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

    static func load(_ name: String) throws -> CapGroup? { try CNIRecords.read(recordName(name), as: CapGroup.self) }

    /// Every tenant group recorded on this node.
    static func all() throws -> [CapGroup] {
        guard let dir = try CNIRecords.directory(create: false) else { return [] }
        return try dir.entries().filter { $0.hasPrefix("tenant-") && $0.hasSuffix(".json") }.compactMap { try CNIRecords.read($0, as: CapGroup.self) }
    }

    /// `member` joins (or changes in) the tenant's group; the group is applied — or, with
    /// `compareOnly`, compared — as a whole.
    func join(_ member: CapMember, on host: NetlinkHandle, compareOnly: Bool = false) throws -> ShapingReport {
        // A recorded member whose device is gone (its pod deleted without a DEL, or a record left
        // in a directory whose namespace inode was reused) is not one any more.
        let present = Set(try host.links(statistics: false).map(\.name))
        var members = try Self.load(name)?.members.filter { $0.name != member.name && present.contains($0.device.rawValue) } ?? []
        members.append(member)
        members.sort { $0.name < $1.name }
        let g = try group(members: members)
        var s = Shaper(handle: host)
        s.compareOnly = compareOnly
        let r = try CNIRecords.shaping { try s.apply(g) }
        if !compareOnly { try CNIRecords.write(recordName, g) }
        return r
    }

    /// Takes the attachments `members` out of every tenant group they are in: their devices are
    /// detached (if still there), the rest of each group applied again; a group left empty is
    /// removed.
    static func leave(_ members: Set<String>, on host: NetlinkHandle) throws {
        let groups = try all().filter { $0.members.contains { members.contains($0.name) } }
        guard !groups.isEmpty else { return }
        // Devices already gone (their pods deleted) leave with them.
        let present = Set(try host.links(statistics: false).map(\.name))
        let s = Shaper(handle: host)
        for g in groups {
            for m in g.members where members.contains(m.name) { _ = try? s.detach(device: m.device) }
            var rest = g
            rest.members.removeAll { members.contains($0.name) || !present.contains($0.device.rawValue) }
            if rest.members.isEmpty {
                try s.remove(rest)
                try CNIRecords.remove(recordName(tenant(of: g)))
            } else {
                try s.apply(rest)
                try CNIRecords.write(recordName(tenant(of: g)), rest)
            }
        }
    }
}
