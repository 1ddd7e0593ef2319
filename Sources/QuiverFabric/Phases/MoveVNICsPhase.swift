import Foundation
import QuiverKernel
import QuiverNetlink

/// Phase `moveVNICs`: ports plugged into another switch, MTUs.
extension ApplyRun {
    /// Ports plugged into another switch go down until their caps and rules are in again (they
    /// are opened with the new ports); MTUs change in place.
    func moveVNICs(_ steps: [Operation]) throws {
        let index = try indexes()
        try handle.perform(try steps.compactMap { o -> NetlinkRequest? in
            guard case .changeVNIC(let dev, let bridge, let mtu) = o else { return nil }
            let master = try bridge.map { b -> Int32 in
                guard let i = index[b.rawValue] else { throw missing("move vnic", dev.rawValue, "switch \(b) missing") }
                return i
            }
            return LinkRequest.change(dev, LinkSettings(up: bridge == nil ? nil : false, mtu: mtu, masterIndex: master))
        })
        for step in steps { count(step) }
    }
}
