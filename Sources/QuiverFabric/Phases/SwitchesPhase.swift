import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink

/// Phase `switches`: bridges and the capped tenants' IFBs.
extension ApplyRun {
    /// Switches and the tenants' IFBs, in one batch (the caps then find the IFBs, and read the
    /// fabric once).
    func createSwitches(_ steps: [Operation]) throws {
        let bridges = steps.compactMap { if case .createBridge(let b) = $0 { return b } else { return nil } }
        let ifbNames = Set(steps.compactMap { if case .createIFB(let i) = $0 { return i } else { return nil } })
        let groups = desired.capGroups.filter { ifbNames.contains($0.ifbFrom) || ifbNames.contains($0.ifbTo) }
        let ifbs = Shaper(handle: handle).ifbRequests(groups, links: current.links)
        try handle.perform(bridges.flatMap { b in
            LinkRequest.add(b.name, Bridge(stp: false),
                            LinkSettings(up: true, mtu: b.mtu, mac: b.mac, group: desired.group, alias: b.tag, ipv6LinkLocal: LinkSettings.noLinkLocal))
        } + ifbs.requests)
        result.created += bridges.count + ifbs.ifbs
    }
}
