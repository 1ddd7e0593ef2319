import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverTopology

/// Phase `removeCaps`: the caps of tenants the file no longer caps.
extension ApplyRun {
    /// Caps of tenants that are gone: the redirects of their VNICs, then their IFBs.
    func removeCaps(_ steps: [Operation]) throws {
        let names = KernelNames(topology)
        let shaper = Shaper(handle: handle)
        for case .removeCaps(let tenant) in steps {
            for l in current.links where names.owns(l) && l.alias?.hasPrefix(names.tagPrefix + "vnic/\(tenant)/") == true {
                try shaper.detach(device: try InterfaceName(validating: l.name))
            }
            for ifb in [names.ifbFrom(tenant: tenant), names.ifbTo(tenant: tenant)] where current.links.contains(where: { $0.name == ifb }) {
                try handle.deleteLink(try InterfaceName(validating: ifb))
            }
            result.deleted += 1
        }
    }
}
