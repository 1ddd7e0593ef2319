import Foundation
import QuiverKernel

/// Phase `deleteLinks`: owned fabric links the file dropped.
extension ApplyRun {
    /// Owned links the file dropped, in one batch (macvtaps first, with their fdb entries).
    func deleteLinks(_ steps: [Operation]) throws {
        let names = steps.compactMap { if case .deleteLink(let l) = $0 { return l } else { return nil } }
        let macvtaps = current.links.filter { l in
            if case .macvtap? = l.data { return names.contains { $0.rawValue == l.name } } else { return false }
        }
        try fabric.deleteMacvtaps(macvtaps, bridges: current.bridgeIndexes)
        let rest = names.filter { n in !macvtaps.contains { $0.name == n.rawValue } }
        try handle.perform(rest.map { LinkRequest.delete($0) })
        for step in steps { count(step) }
    }
}
