import Foundation
import QuiverVM

/// Phase `guests`: each new or changed guest's qemu, once its NICs are capped and protected.
extension ApplyRun {
    /// Starts each guest's qemu with its NICs' queues, one after another.
    func startGuests(_ steps: [Operation]) throws {
        for case .startVM(let host) in steps {
            guard let vm = desired.vms.first(where: { $0.host == host }), let queues = guestQueues.removeValue(forKey: host) else { continue }
            undo.guests.append(vm.directory)
            let record = try VMLauncher.start(vm.spec, queues: queues, directory: vm.directory, confine: fabric.confineGuests)
            result.notes += record.notices.filter { $0.hasPrefix(GuestOverlay.noticePrefix) }.map { "guest \(host): \($0)" }
            result.created += 1
            tick(1)
        }
    }
}
