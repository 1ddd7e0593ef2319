import Foundation
import QuiverBandwidth
import QuiverKernel

/// Phase `caps`: each tenant's caps, and the redirects of VNICs no longer capped.
extension ApplyRun {
    func applyCaps(_ steps: [Operation]) throws {
        let tenants = Set(steps.compactMap { if case .applyCaps(let t) = $0 { return t } else { return nil } })
        let macs = try randomMACs()
        var groups = desired.capGroups.filter { tenants.contains($0.name) }
        for g in groups.indices {
            // `mac: random`: the kernel picked it; the caps use what it picked.
            for i in groups[g].members.indices where groups[g].members[i].mac == nil {
                groups[g].members[i].mac = macs[groups[g].members[i].device]
            }
        }
        let shaper = Shaper(handle: handle)
        if !groups.isEmpty {
            // When the plan changes no link in the fabric, the links read while planning serve,
            // and so does the caps' state read beside them.
            let linksUnchanged = plan.phases.allSatisfy { $0.steps.allSatisfy(\.keepsFabricLinks) }
            let state = linksUnchanged ? try capsRead?.wait().get() : nil
            let r = try shaper.apply(groups, links: linksUnchanged ? current.links : nil, state: state)
            result.created += r.created
            result.changed += r.changed
            result.deleted += r.deleted
        }
        for case .uncap(let dev) in steps where try shaper.detach(device: dev) {
            result.deleted += 1
        }
    }

    /// The MACs the kernel picked for `mac: random` VNICs, by host device: as planning read them,
    /// or — for VNICs this apply made — read once from their hosts.
    func randomMACs() throws -> [InterfaceName: MACAddress] {
        if let m = pickedMACs { return m }
        let made = Set(plan.steps(.createVNICs).compactMap { if case .createVNIC(let v) = $0 { return v.hostDevice } else { return nil } })
        var macs = current.randomMACs(of: desired).filter { !made.contains($0.key) }
        for v in desired.vnics where v.mac == nil && macs[v.hostDevice] == nil {
            macs[v.hostDevice] = try host(v.namespace).link(named: v.name).mac
        }
        pickedMACs = macs
        return macs
    }
}
