import Foundation
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import Testing

/// A scratch fabric for one test, torn down afterwards and checked to be gone.
func withFabric<T>(endpoints: Int, _ body: (ScratchFabric) throws -> T) throws -> T {
    let f = try ScratchFabric(endpoints: endpoints, prefix: "qb")
    defer {
        let failed = f.tearDown()
        #expect(failed.isEmpty, "could not delete \(failed)")
        #expect(f.namespaceNames.isEmpty, "namespaces left: \(f.namespaceNames)")
    }
    return try body(f)
}

func mbit(_ bps: Double) -> String { String(format: "%.2f Mbit/s", bps / 1e6) }
