import Foundation
import QuiverTopology
import QuiverVM

/// Phase `stopGuests`: guests the file dropped or changed.
extension ApplyRun {
    /// Guests the file dropped or changed, all at once (each may wait out its powerdown).
    func stopGuests(_ steps: [Operation]) throws {
        let name = try TopologyName(validating: topology.name)
        let directories = try steps.compactMap { o -> String? in
            guard case .stopVM(let host) = o else { return nil }
            return GuestDirectory.path(topology: name, host: try ObjectName(validating: host))
        }
        result.deleted += try Fabric.stopGuests(directories)
    }
}
