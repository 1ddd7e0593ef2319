import Foundation
import QuiverTopology
import QuiverVM

/// Phase `stopGuests`: guests the file dropped (their state goes too) or changed.
extension ApplyRun {
    /// Guests the file dropped or changed, all at once (each may wait out its powerdown).
    func stopGuests(_ steps: [Operation]) throws {
        let name = try TopologyName(validating: topology.name)
        let directories = try steps.compactMap { o -> String? in
            guard case .stopVM(let host) = o else { return nil }
            return GuestDirectory.path(topology: name, host: try ObjectName(validating: host))
        }
        result.deleted += try Fabric.stopGuests(directories)
        for case .stopDHCP(let directory, let namespace) in steps {
            try DHCPServer.stop(directory: directory, namespace: namespace)
            result.deleted += 1
        }
        // A guest the file dropped loses its disk overlay and seed; one that changed keeps them.
        let kept = Set(topology.tenants.flatMap(\.hosts).filter { $0.vm != nil }.map(\.name))
        for case .stopVM(let host) in steps where !kept.contains(host) {
            try GuestState.remove(GuestState.path(topology: name, host: try ObjectName(validating: host)))
        }
    }
}
