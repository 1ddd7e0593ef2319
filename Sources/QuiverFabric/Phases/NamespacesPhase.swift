import Foundation
import QuiverKernel
import QuiverNetlink

/// Phase `namespaces`: new host namespaces, made beside the phases that follow (``NamespacePipeline``).
extension ApplyRun {
    /// Starts making the new namespaces (``NamespacePipeline``) and tags, here, those an
    /// interrupted apply made without a tag.
    func startNamespaces(_ steps: [Operation]) throws {
        let tags = Dictionary(desired.namespaces.map { ($0.name, $0.tag) }, uniquingKeysWith: { a, _ in a })
        let new = steps.compactMap { o -> (name: String, tag: String)? in
            guard case .createNamespace(let n) = o, let tag = tags[n] else { return nil }
            return (n.rawValue, tag)
        }
        if !new.isEmpty { namespaces = NamespacePipeline(new) { [undo] in undo.madeNamespaces($0) } }
        for case .tagNamespace(let n) in steps {
            guard let tag = tags[n] else { continue }
            try host(n.rawValue).perform([LinkRequest.change("lo", LinkSettings(up: true, alias: tag))])
            result.changed += 1
            tick(1)
        }
    }
}
