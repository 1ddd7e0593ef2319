import Foundation
import Glibc
import QuiverKernel

/// The uid and gid a guest's qemu runs as: one per guest, from a range no user or group of the
/// host has (default 1879048192–1879113727, 0x70000000 + 65536; `QUIVER_GUEST_IDS=FIRST-LAST`
/// sets another). Each is claimed by a file `/run/quiver/guest-ids/UID` naming its guest, made
/// with `O_EXCL`, so two applies never hand out the same one; the guest's uid and gid are equal.
public enum GuestIdentity {
    public static let defaultRange: ClosedRange<UInt32> = 0x7000_0000...(0x7000_0000 + 65535)

    /// The configured range, checked against `/etc/passwd` and `/etc/group`.
    public static func range(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ClosedRange<UInt32> {
        var r = defaultRange
        if let text = environment["QUIVER_GUEST_IDS"] {
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let first = DecimalText.integer(parts[0]).flatMap(UInt32.init(exactly:)),
                  let last = DecimalText.integer(parts[1]).flatMap(UInt32.init(exactly:)), first >= 1000, first <= last, last < UInt32.max else {
                throw VMError("QUIVER_GUEST_IDS \(InvalidValue.quoted(text)) is not FIRST-LAST with 1000 ≤ FIRST ≤ LAST < 4294967295 in decimal; unset it for the default \(defaultRange.lowerBound)-\(defaultRange.upperBound)")
            }
            r = first...last
        }
        for (file, what) in [("/etc/passwd", "user"), ("/etc/group", "group")] {
            let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let f = line.split(separator: ":", omittingEmptySubsequences: false)
                if f.count > 2, let id = UInt32(f[2]), r.contains(id) {
                    throw VMError("the guest id range \(r.lowerBound)-\(r.upperBound) holds \(what) \(f[0]) (id \(id)) of \(file): guests must not share an id with anyone; set QUIVER_GUEST_IDS=FIRST-LAST to a range no user or group has")
                }
            }
        }
        return r
    }

    static func claims() throws -> TrustedDirectory { try TrustedDirectory.run(["guest-ids"], create: true)! }

    /// The id `guest` holds, or the lowest free one of `range`, claimed for it.
    public static func claim(_ guest: String, in range: ClosedRange<UInt32>) throws -> UInt32 {
        if let held = try held(by: guest) {
            if range.contains(held) { return held }
            try release(guest)   // claimed under another range: take one from this one
        }
        let dir = try claims()
        let taken = Set(try dir.entries().compactMap(UInt32.init))
        for id in range where !taken.contains(id) {
            let f = openat(dir.fd, String(id), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if f < 0 { if errno == EEXIST { continue }; throw VMError("cannot claim guest id \(id): \(String(cString: strerror(errno)))") }
            let bytes = Array(guest.utf8)
            let n = write(f, bytes, bytes.count)
            close(f)
            guard n == bytes.count else { _ = try? dir.remove(String(id)); throw VMError("cannot write the claim of guest id \(id)") }
            return id
        }
        throw VMError("every guest id of \(range.lowerBound)-\(range.upperBound) is in use; stop a guest or set QUIVER_GUEST_IDS to a larger range")
    }

    /// The id claimed for `guest`, if any.
    public static func held(by guest: String) throws -> UInt32? {
        guard let dir = try TrustedDirectory.run(["guest-ids"], create: false) else { return nil }
        for name in try dir.entries() {
            guard let id = UInt32(name), let data = try? dir.read(name, limit: 256), String(decoding: data, as: UTF8.self) == guest else { continue }
            return id
        }
        return nil
    }

    /// Gives `guest`'s id back (once its qemu is gone).
    public static func release(_ guest: String) throws {
        guard let id = try held(by: guest), let dir = try TrustedDirectory.run(["guest-ids"], create: false) else { return }
        try dir.remove(String(id))
    }
}
