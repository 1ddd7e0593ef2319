import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverTopology
import QuiverVM
import SystemPackage

/// Guests of `kind: vm` hosts: their NICs' devices in the fabric and their qemu.
extension Fabric {
    /// Stops guests all at once (each may wait out its powerdown) and removes their run
    /// directories. Returns how many were running.
    static func stopGuests(_ directories: [String]) throws -> Int {
        let results = ResultSlots<Bool>(count: directories.count)
        DispatchQueue.concurrentPerform(iterations: directories.count) { i in
            results.set(i, Result { try VMLauncher.stop(directory: directories[i]) })
        }
        var stopped = 0
        var failure: Error?
        for (i, d) in directories.enumerated() {
            do {
                if try results.get(i) { stopped += 1 }
                // Only a guest that is surely gone loses its directory (pidfile, QMP socket) — and
                // of it only what Quiver and qemu keep there.
                try GuestDirectory.remove(d)
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        return stopped
    }

    /// Makes the guest's NICs in the fabric — taps (Quiver's link group and tag, on their switch)
    /// or macvtaps over the switch's bridge (made anew, with the guest's MAC), all down until the
    /// ports-up phase — and returns each one's queue descriptors, for its qemu. A tap lives as
    /// long as its descriptors (then qemu's); a macvtap is a link of the topology and stays until
    /// destroy. `bridgeIndex`: the fabric's links by name; `bridges`: the interface indexes of
    /// the bridges among the links read while planning.
    func createGuestNICs(_ vm: DesiredFabric.VM, group: UInt32, bridgeIndex: [String: Int32], bridges: Set<Int32>) throws -> [[FileDescriptor]] {
        // A qemu left by an interrupted start still holds the taps: it goes first.
        _ = try VMLauncher.prepare(directory: vm.directory, guest: vm.spec.name)
        var queues: [[FileDescriptor]] = []
        var handedOver = false
        defer { if !handedOver { for q in queues { for fd in q { try? fd.close() } } } }
        for (nic, t) in zip(vm.spec.nics, vm.taps) {
            guard let br = bridgeIndex[t.bridge.rawValue] else {
                throw NetlinkError(context: RequestContext("create NICs of guest", vm.host), errno: .noSuchDevice,
                                   hint: (t.overSwitch ? "switch " : "lower link ") + "\(t.bridge) missing")
            }
            let name = t.name
            // The planner only starts a guest whose NIC names are free or the topology's own; a
            // macvtap of that name (this guest's, or its NIC before a change of mode) goes first.
            if let l = try handle.linkIfPresent(named: name), case .macvtap = l.data {
                try deleteMacvtaps([l], bridges: bridges)
            }
            if t.macvtap {
                // A tap of that name (the NIC before a change of mode) goes with its qemu.
                let deadline = Date().addingTimeInterval(3)
                while let l = try handle.linkIfPresent(named: name), case .tun = l.data, Date() < deadline {
                    Thread.sleep(forTimeInterval: 0.05)
                }
                let q = UInt32(nic.queues)
                let index = try Macvtap.create(name, lowerIndex: br, LinkSettings(mac: nic.mac, group: group, alias: t.tag,
                                                                                  txQueues: q, rxQueues: q, ipv6LinkLocal: LinkSettings.noLinkLocal), handle: handle)
                // Frames to the guest's MAC go up the bridge device to the macvtap, not out of
                // every port: the bridge never learns a MAC that only sends through its device.
                // (A host link under a macvtap is not Quiver's and is left as it is.)
                if t.overSwitch { try handle.perform([BridgeFDBRequest.addLocal(nic.mac, bridgeIndex: br, bridgeName: t.bridge.rawValue)]) }
                queues.append(try Macvtap.openQueues(ifindex: index, name: name, TapOptions(queues: nic.queues)))
                continue
            }
            // A tap whose qemu just died may take a moment to go away (EBUSY until then).
            let deadline = Date().addingTimeInterval(3)
            while true {
                do {
                    queues.append(try Tap.create(name, TapOptions(queues: nic.queues), in: fabricNamespace).takeQueues())
                    break
                } catch let e as SystemCallError where e.errno == .resourceBusy && Date() < deadline {
                    Thread.sleep(forTimeInterval: 0.05)
                }
            }
            // No IPv6 link-local address on the fabric side (the mode before the up).
            try handle.perform([LinkRequest.change(name, LinkSettings(masterIndex: br, group: group, alias: t.tag, ipv6LinkLocal: LinkSettings.noLinkLocal))])
        }
        handedOver = true
        return queues
    }

    /// Deletes macvtaps with the local fdb entries startVM gave their MACs on their bridges (an
    /// entry left behind would swallow frames for a later port with the same MAC). A macvtap over
    /// a host link has no such entry, and the host link is not touched: on a device that is not a
    /// bridge the same request would take the MAC off the device's own address list. `bridges`:
    /// the interface indexes of the fabric's bridges (a macvtap's lower link is older than it).
    func deleteMacvtaps(_ links: [Link], bridges: Set<Int32>) throws {
        guard !links.isEmpty else { return }
        for l in links {
            guard case .macvtap(let m)? = l.data, let mac = l.mac, bridges.contains(m.lowerIndex) else { continue }
            do {
                try handle.perform([BridgeFDBRequest.deleteLocal(mac, bridgeIndex: m.lowerIndex, bridgeName: "index \(m.lowerIndex)")])
            } catch let e as NetlinkError where e.errno == .noSuchFileOrDirectory || e.errno == .noSuchDevice {}
        }
        try handle.perform(try links.map { LinkRequest.delete(try InterfaceName(validating: $0.name)) })
    }
}
