import Foundation
import QuiverKernel
import QuiverNetlink

/// Phase `portsUp`: ports and endpoints up, last.
extension ApplyRun {
    /// Ports up, now that their caps and rules are in place (even those of a `mac: random` VNIC,
    /// whose rules could only be written once the kernel picked its MAC): new and moved ports,
    /// guests' NICs and ports found down — one batch in the fabric, on a thread of its own beside
    /// the hosts' batches: endpoints found down, with their default routes, which need their
    /// device up.
    func bringPortsUp(_ steps: [Operation]) throws {
        var perHost: [String: [NetlinkRequest]] = [:]
        var ports: [NetlinkRequest] = []
        for o in steps {
            switch o {
            case .bringUpPort(let dev), .openPort(let dev):
                ports.append(LinkRequest.change(dev, LinkSettings(up: true)))
            default:
                guard let (ns, request) = try hostRequest(o) else { continue }
                perHost[ns, default: []].append(request)
            }
            count(o)
        }
        let fabricSide = ports.isEmpty ? nil : Background { [handle, ports] in try handle.perform(ports) }
        let hosts = Result {
            for (ns, requests) in perHost.sorted(by: { $0.key < $1.key }) { try host(ns).perform(requests) }
        }
        try fabricSide?.wait().get()
        try hosts.get()
    }
}
