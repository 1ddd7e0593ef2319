import Foundation
import QuiverVM

/// Phase `dhcp`: the tenants' DHCP servers, once their namespaces, addresses and ports are in.
extension ApplyRun {
    func startDHCPServers(_ steps: [Operation]) throws {
        for case .startDHCP(let server) in steps {
            undo.dhcp.append((server.directory, server.namespace))
            try server.start()
            result.created += 1
            tick(1)
        }
    }
}
