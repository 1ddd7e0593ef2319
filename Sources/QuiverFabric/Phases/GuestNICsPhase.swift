import Foundation
import SystemPackage

/// Phase `guestNICs`: the taps and macvtaps of guests about to start, down.
extension ApplyRun {
    /// Each new or changed guest's NICs, down; their queues wait here for its qemu.
    func createGuestNICs(_ steps: [Operation]) throws {
        let index = try indexes()
        for case .createGuestNICs(let host, _) in steps {
            guard let vm = desired.vms.first(where: { $0.host == host }) else { continue }
            undo.preparedGuests.append(vm.directory)
            guestQueues[host] = try fabric.createGuestNICs(vm, group: desired.group, bridgeIndex: index, bridges: current.bridgeIndexes)
        }
    }

    /// Queues of guests that never started (the apply stopped first): closing them takes their
    /// taps away.
    func closeGuestQueues() {
        for queues in guestQueues.values { for q in queues { for fd in q { try? fd.close() } } }
        guestQueues = [:]
    }
}
