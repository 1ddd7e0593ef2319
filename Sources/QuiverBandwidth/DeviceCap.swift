import Foundation
import QuiverKernel
import QuiverNetlink

/// A cap on one device outside any topology: the analogue of
/// `dladm set-linkprop -p maxbw=50M DEV` — a cap group of one member whose IFBs are named after
/// the device's index. The group is recorded (as a cache, for labels and `show`) under
/// `/run/quiver/caps`; the kernel stays the truth.
public enum DeviceCap {
    public static let recordDirectory = TrustedDirectory.runRoot + "/caps"

    public static func ownerTag(_ device: InterfaceName) -> String { "quiver:cap/\(device)" }

    /// The one-member group for `device` (index `ifindex`).
    public static func group(device: InterfaceName, ifindex: Int32, maxbw: Bitrate, floor: Bitrate? = nil,
                             flows: [FlowCap] = [], burst: UInt32? = nil, queueLimit: UInt32? = nil) throws -> CapGroup {
        CapGroup(name: device.rawValue,
                 ifbFrom: try InterfaceName(validating: "qf\(ifindex)"),
                 ifbTo: try InterfaceName(validating: "qt\(ifindex)"),
                 maxbw: nil,
                 members: [CapMember(name: device.rawValue, device: device, maxbw: maxbw, floor: floor, flows: flows,
                                     burst: burst, queueLimit: queueLimit)],
                 ownerTag: ownerTag(device))
    }

    /// `/run/quiver/caps/NS/` (`host` for the host namespace): where the record of a device's cap
    /// is kept, checked like all of Quiver's state (``TrustedDirectory``).
    static func records(_ handle: NetlinkHandle, create: Bool) throws -> TrustedDirectory? {
        let ns = handle.namespace?.name ?? "host"
        return try TrustedDirectory.run(["caps", ns], create: create)
    }

    /// Refuses a device this command must not cap: the loopback device, and any device that is
    /// part of something else Quiver made — a topology's VNIC port, tap, macvtap or IFB (its
    /// caps are the topology file's), an endpoint inside a topology's host namespace, or another
    /// cap's IFB.
    static func checkCappable(_ link: Link, on handle: NetlinkHandle) throws {
        if link.name == "lo" || link.linkClass == "loopback" {
            throw DeviceCapRefused(device: link.name, reason: link.name == "lo" ? "is the loopback device" : "is a loopback device",
                                   remedy: "cap a device that carries an endpoint's traffic")
        }
        if let tag = link.alias, tag.hasPrefix("quiver:") {
            if tag.hasPrefix("quiver:cap/") {
                if tag != ownerTag(try InterfaceName(validating: link.name)) {
                    throw DeviceCapRefused(device: link.name, reason: "is the IFB of \(tag.dropFirst("quiver:cap/".count))'s cap",
                                           remedy: "cap the device itself")
                }
            } else {
                let topology = tag.dropFirst("quiver:".count).prefix { $0 != "/" }
                throw DeviceCapRefused(device: link.name, reason: "belongs to topology \(topology) (tag \(tag))",
                                       remedy: "change its caps in the topology's file and `quiver apply` it")
            }
        }
        // An endpoint inside a topology's host: that namespace's lo carries the topology's tag.
        if handle.namespace != nil, let lo = try handle.linkIfPresent(named: "lo"), let tag = lo.alias, tag.hasPrefix("quiver:"), !tag.hasPrefix("quiver:cap/") {
            let topology = tag.dropFirst("quiver:".count).prefix { $0 != "/" }
            throw DeviceCapRefused(device: link.name, reason: "is in \(handle.location), a host of topology \(topology)",
                                   remedy: "change its caps in the topology's file and `quiver apply` it")
        }
    }

    /// Sets (or changes in place) the cap of `device`.
    @discardableResult
    public static func set(_ device: InterfaceName, maxbw: Bitrate, floor: Bitrate? = nil, flows: [FlowCap] = [],
                           burst: UInt32? = nil, queueLimit: UInt32? = nil,
                           on handle: NetlinkHandle, policy: ShapingPolicy = ShapingPolicy()) throws -> ShapingReport {
        let link = try handle.link(named: device)
        try checkCappable(link, on: handle)
        let g = try group(device: device, ifindex: link.index, maxbw: maxbw, floor: floor, flows: flows, burst: burst, queueLimit: queueLimit)
        // A record directory Quiver would not write to stops it before anything changes; one
        // that does not exist yet is made only once the cap is in.
        _ = try records(handle, create: false)
        let report = try Shaper(handle: handle, policy: policy).apply(g)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try records(handle, create: true)!.write("\(device).json", try encoder.encode(g))
        return report
    }

    /// The recorded group of `device`, if its IFBs still exist.
    public static func current(_ device: InterfaceName, on handle: NetlinkHandle) throws -> CapGroup? {
        guard let data = try records(handle, create: false)?.read("\(device).json"),
              let g = try? JSONDecoder().decode(CapGroup.self, from: data), g.members.first?.device == device else {
            return try recover(device, on: handle)
        }
        return try handle.linkIfPresent(named: g.ifbFrom) != nil ? g : recover(device, on: handle)
    }

    /// Without a record: the device's own IFBs, found from the kernel (their tag names the device);
    /// rates are read back from the member class.
    static func recover(_ device: InterfaceName, on handle: NetlinkHandle) throws -> CapGroup? {
        guard let link = try handle.linkIfPresent(named: device) else { return nil }
        let probe = try group(device: device, ifindex: link.index, maxbw: .kbit(8))
        guard let ifb = try handle.linkIfPresent(named: probe.ifbFrom), ifb.alias == probe.ownerTag,
              let member = try handle.classes(ifindex: ifb.index).first(where: { $0.handle == TCHandle(major: 1, minor: 0x100) })?.htb
        else { return nil }
        return try group(device: device, ifindex: link.index, maxbw: member.ceil)
    }

    /// Removes the cap of `device`: its redirects and its IFBs. Returns false if it had none.
    @discardableResult
    public static func clear(_ device: InterfaceName, on handle: NetlinkHandle) throws -> Bool {
        if let link = try handle.linkIfPresent(named: device) { try checkCappable(link, on: handle) }
        guard let g = try current(device, on: handle) else { return false }
        try Shaper(handle: handle).remove(g)
        try records(handle, create: false)?.remove("\(device).json")
        // The namespace's record directory goes with its last record.
        _ = try? TrustedDirectory.run(["caps"], create: false)?.removeDirectory(handle.namespace?.name ?? "host")
        return true
    }
}

/// `quiver cap` will not cap this device, and why.
public struct DeviceCapRefused: Error, Sendable, CustomStringConvertible {
    public var device: String
    public var reason: String
    public var remedy: String
    public var description: String { "\(device) \(reason); nothing was changed — \(remedy)" }
}
