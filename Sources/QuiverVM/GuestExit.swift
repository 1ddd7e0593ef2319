import Foundation

/// Why a guest's qemu is gone, as far as the host can tell afterwards. qemu runs detached (its
/// parent is not the one who asks), so its exit status is nobody's to read; what is left is:
/// the stop mark ``VMLauncher/stop(directory:powerdownTimeout:guestShutdownTimeout:)`` writes,
/// and the guest kernel's last words on the serial console.
public enum GuestExit: String, Sendable, Codable, Equatable {
    /// `quiver vm stop`, `destroy`, or an apply that replaced the guest.
    case stoppedByQuiver = "stopped by quiver"
    /// The guest's kernel said `reboot: Power down` last: the guest shut itself down.
    case poweredOff = "the guest powered off"
    /// Neither: qemu was killed or crashed, or exited without the guest saying goodbye.
    case died = "qemu died (killed, crashed or exited without a guest power-off)"
    /// The daemon's restart did not get qemu running (its kernel, disk or options failed it).
    case failedToStart = "qemu failed to start"

    /// The reason for the guest whose run directory is `directory` (its qemu already gone).
    public static func of(directory: String) -> GuestExit {
        guard let dir = try? GuestDirectory.open(directory, create: false) else { return .died }
        if dir.kind(of: GuestDirectory.Entry.stopRequest.rawValue) != nil { return .stoppedByQuiver }
        // Only the console's last line counts: an earlier boot's power-off is followed by
        // this boot's output. (A guest can print that line itself: it gains nothing but staying down.)
        guard let fd = (try? dir.openForReading(GuestDirectory.Entry.console.rawValue)) ?? nil else { return .died }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        let start = max(0, size - 4096)
        var buf = [UInt8](repeating: 0, count: Int(size - start))
        guard !buf.isEmpty, pread(fd, &buf, buf.count, start) == buf.count else { return .died }
        let last = String(decoding: buf, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { $0.trimmingCharacters(in: .whitespaces) }.last { !$0.isEmpty } ?? ""
        return last.contains("reboot: Power down") ? .poweredOff : .died
    }
}
