import Foundation
import QuiverNetlink

/// Phase `deleteNamespaces`: owned host namespaces the file dropped.
extension ApplyRun {
    func deleteNamespaces(_ steps: [Operation]) throws {
        for case .deleteNamespace(let n) in steps {
            handles[n.rawValue] = nil
            try NetworkNamespace.delete(named: n.rawValue)
            result.deleted += 1
        }
    }
}
