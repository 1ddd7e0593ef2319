import Foundation
import QuiverKernel
import QuiverNetlink

/// Phase `segments`: a node's VXLAN devices on the switches that span nodes, then their static
/// forwarding entries, in one batch.
extension ApplyRun {
    func buildSegments(_ steps: [Operation]) throws {
        // The switches may be new: their indexes (and those of segments kept) are read now.
        var index = Dictionary(try handle.links(statistics: false).map { ($0.name, $0.index) }, uniquingKeysWith: { a, _ in a })
        var requests: [NetlinkRequest] = []
        func bridge(_ s: DesiredFabric.Segment) throws -> Int32 {
            guard let i = index[s.bridge.rawValue] else { throw SegmentSwitchMissing(segment: s.device.rawValue, bridge: s.bridge.rawValue) }
            return i
        }
        let port = BridgePortFlags(learning: false, neighSuppress: true)
        for step in steps {
            switch step {
            case .createSegment(let s):
                requests += LinkRequest.add(s.device, s.vxlan, LinkSettings(up: false, mtu: s.mtu, masterIndex: try bridge(s), group: desired.group,
                                                                            alias: s.tag, ipv6LinkLocal: LinkSettings.noLinkLocal))
                requests.append(LinkRequest.setBridgePort(s.device, port))
            case .changeBridgeMAC(let b, let mac):
                requests.append(LinkRequest.change(b, LinkSettings(mac: mac)))
            case .changeSegment(let s):
                requests.append(LinkRequest.change(s.device, LinkSettings(mtu: s.mtu, masterIndex: try bridge(s))))
                requests.append(LinkRequest.setBridgePort(s.device, port))
            default: break
            }
        }
        if !requests.isEmpty {
            try handle.perform(requests)
            index = Dictionary(try handle.links(statistics: false).map { ($0.name, $0.index) }, uniquingKeysWith: { a, _ in a })
        }
        var entries: [NetlinkRequest] = []
        for step in steps {
            switch step {
            case .addForwarding(let e), .removeForwarding(let e):
                guard let i = index[e.device.rawValue] else { continue }
                if case .addForwarding = step { entries.append(NeighbourRequest.add(e.neighbour(ifindex: i))) } else { entries.append(NeighbourRequest.delete(e.neighbour(ifindex: i))) }
            default: break
            }
        }
        try handle.perform(entries)
        for step in steps { count(step) }
    }
}

/// A segment's switch was not in the fabric when its segment was to be made (someone deleted it
/// during the apply); the apply rolls back.
struct SegmentSwitchMissing: Error, CustomStringConvertible {
    var segment: String
    var bridge: String
    var description: String { "segment \(segment): its switch \(bridge) is gone from the fabric" }
}
