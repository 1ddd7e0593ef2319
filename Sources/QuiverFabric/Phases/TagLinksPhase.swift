import Foundation
import QuiverKernel
import QuiverNetlink

/// Phase `tagLinks`: the owner tag of links the topology owns whose tag is missing or stale.
extension ApplyRun {
    /// Links of the topology found untagged (an interrupted apply) or with a stale tag.
    func tagLinks(_ steps: [Operation]) throws {
        try handle.perform(steps.compactMap { o -> NetlinkRequest? in
            guard case .tagLink(let l, let tag) = o else { return nil }
            return LinkRequest.change(l, LinkSettings(alias: tag))
        })
        for step in steps { count(step) }
    }
}
