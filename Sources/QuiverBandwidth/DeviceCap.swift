import Foundation
import QuiverKernel
import QuiverNetlink

/// A cap on one device outside any topology: the analogue of
/// `dladm set-linkprop -p maxbw=50M DEV` — a cap group of one member whose IFBs are named after
/// the device's index. The group is recorded (as a cache, for labels and `show`) under
/// `/run/quiver/caps`; the kernel stays the truth.
public enum DeviceCap {
    public static let recordDirectory = "/run/quiver/caps"

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

    static func recordPath(_ device: InterfaceName, _ handle: NetlinkHandle) -> String {
        let ns = handle.namespace?.name ?? "host"
        return "\(recordDirectory)/\(ns)/\(device).json"
    }

    /// Sets (or changes in place) the cap of `device`.
    @discardableResult
    public static func set(_ device: InterfaceName, maxbw: Bitrate, floor: Bitrate? = nil, flows: [FlowCap] = [],
                           burst: UInt32? = nil, queueLimit: UInt32? = nil,
                           on handle: NetlinkHandle, policy: ShapingPolicy = ShapingPolicy()) throws -> ShapingReport {
        let link = try handle.link(named: device)
        let g = try group(device: device, ifindex: link.index, maxbw: maxbw, floor: floor, flows: flows, burst: burst, queueLimit: queueLimit)
        let report = try Shaper(handle: handle, policy: policy).apply(g)
        let path = recordPath(device, handle)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(g).write(to: URL(fileURLWithPath: path))
        return report
    }

    /// The recorded group of `device`, if its IFBs still exist.
    public static func current(_ device: InterfaceName, on handle: NetlinkHandle) throws -> CapGroup? {
        let path = recordPath(device, handle)
        guard let data = FileManager.default.contents(atPath: path),
              let g = try? JSONDecoder().decode(CapGroup.self, from: data) else {
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
        guard let g = try current(device, on: handle) else { return false }
        try Shaper(handle: handle).remove(g)
        try? FileManager.default.removeItem(atPath: recordPath(device, handle))
        return true
    }
}
