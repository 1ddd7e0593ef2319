import Foundation
import QuiverKernel
import QuiverVM
import Testing

/// The parts of a guest's jail that need no qemu: its command line, its id range, the names it
/// accepts. (A running jail is checked from outside in QuiverCLITests' GuestJailTrafficTests.)
@Suite struct GuestJailTests {
    func value(_ argv: [String], after flag: String, nth: Int = 0) -> String? {
        let idx = argv.indices.filter { argv[$0] == flag }
        return nth < idx.count ? argv[idx[nth] + 1] : nil
    }

    /// Jailed, qemu is given its sockets and console open and no path of the host at all; its own
    /// seccomp filter is on; it neither daemonizes nor writes a pidfile.
    @Test func aJailedCommandLineNamesNoHostPath() {
        let spec = VMSpec(name: "lab-g1", kernel: "/k/vmlinuz", nics: [VMNIC(tap: "lab-g1-eth0", mac: try! MACAddress("02:00:00:00:00:31"), guestDevice: "eth0")])
        let a = QemuCommand.argv(spec, files: QemuCommand.Files(directory: "/run/quiver/vms/lab/g1"), fileFDs: .init(kernel: 3),
                                 tapFDs: [[4]], vhostFDs: nil, accel: .tcg, binary: "/usr/bin/qemu-system-x86_64",
                                 confined: .init(qmp: 5, agent: 6, console: 7))
        #expect(value(a, after: "-sandbox") == "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")
        #expect(value(a, after: "-add-fd") == "fd=7,set=2")
        #expect(value(a, after: "-chardev", nth: 0) == "file,id=console,path=/dev/fdset/2")
        #expect(value(a, after: "-chardev", nth: 1) == "socket,id=agent,fd=6,server=on,wait=off")
        #expect(value(a, after: "-chardev", nth: 2) == "socket,id=qmp,fd=5,server=on,wait=off")
        #expect(!a.contains("-pidfile") && !a.contains("-daemonize"))
        #expect(!a.contains { $0.contains("/run/") || $0.contains("/dev/net") }, "\(a)")
    }

    @Test(arguments: [
        ("", nil),
        ("2000000000-2000000009", "2000000000...2000000009"),
        ("3000000000-3000065535", "3000000000...3000065535"),
        ("999-2000", "QUIVER_GUEST_IDS \"999-2000\" is not FIRST-LAST with 1000 ≤ FIRST ≤ LAST < 4294967295 in decimal; unset it for the default 1879048192-1879113727"),
        ("2000-1000", "QUIVER_GUEST_IDS \"2000-1000\" is not FIRST-LAST"),
        ("1000-", "QUIVER_GUEST_IDS \"1000-\" is not FIRST-LAST"),
        ("-1000", "QUIVER_GUEST_IDS \"-1000\" is not FIRST-LAST"),
        ("1e3-2e3", "QUIVER_GUEST_IDS \"1e3-2e3\" is not FIRST-LAST"),
        (" 1000-2000", "QUIVER_GUEST_IDS \" 1000-2000\" is not FIRST-LAST"),
        ("1000-2000-3000", "QUIVER_GUEST_IDS \"1000-2000-3000\" is not FIRST-LAST"),
        ("99999999999-99999999999", "QUIVER_GUEST_IDS \"99999999999-99999999999\" is not FIRST-LAST"),
        ("65000-66000", "the guest id range 65000-66000 holds user nobody (id 65534) of /etc/passwd"),
    ] as [(String, String?)])
    func guestIDRanges(_ text: String, _ expected: String?) {
        let env = text.isEmpty ? [:] : ["QUIVER_GUEST_IDS": text]
        let got: String
        do {
            let r = try GuestIdentity.range(environment: env)
            got = "\(r.lowerBound)...\(r.upperBound)"
        } catch {
            got = "\(error)"
        }
        if let expected, expected.first?.isNumber == true { #expect(got == expected) }
        else if let expected { #expect(got.contains(expected), "\(got)") }
        else { #expect(got == "\(GuestIdentity.defaultRange.lowerBound)...\(GuestIdentity.defaultRange.upperBound)") }
    }

    /// A library caller's guest name becomes a cgroup's and a claim's: anything but one safe path
    /// component is refused before anything is made.
    @Test(arguments: ["../x", "a/b", "-x", "", "x y", "g\n1", String(repeating: "a", count: 65), "é"])
    func jailedGuestNamesAreOnePathComponent(_ name: String) throws {
        let dir = "\(VMLauncher.runRoot)/jn-\(UUID().uuidString.prefix(8).lowercased())"
        let spec = VMSpec(name: name, kernel: "/dev/null", nics: [])
        #expect(throws: VMError.self) { try VMLauncher.start(spec, queues: [], directory: dir) }
        do { _ = try VMLauncher.start(spec, queues: [], directory: dir) } catch {
            #expect("\(error)".contains("may use only letters, digits, _ and - (1–64 bytes, not starting with -) to run in a jail"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    /// One id per guest, the same one on every claim, never one another guest holds; a claim
    /// under an earlier range is moved into the configured one; given back on release.
    @Test func guestIDsAreClaimedOncePerGuest() throws {
        let a = "ja-\(UUID().uuidString.prefix(8).lowercased())", b = "jb-\(UUID().uuidString.prefix(8).lowercased())"
        defer { try? GuestIdentity.release(a); try? GuestIdentity.release(b) }
        let range: ClosedRange<UInt32> = 3_900_000_000...3_900_000_999
        let ia = try GuestIdentity.claim(a, in: range), ib = try GuestIdentity.claim(b, in: range)
        #expect(ia != ib && range.contains(ia) && range.contains(ib))
        #expect(try GuestIdentity.claim(a, in: range) == ia)
        #expect(try GuestIdentity.held(by: a) == ia)
        let other: ClosedRange<UInt32> = 3_900_001_000...3_900_001_999
        let moved = try GuestIdentity.claim(a, in: other)
        let heldNow = try GuestIdentity.held(by: a)
        #expect(other.contains(moved) && heldNow == moved)
        try GuestIdentity.release(a)
        #expect(try GuestIdentity.held(by: a) == nil)
        #expect(try GuestIdentity.held(by: b) == ib)
    }
}
