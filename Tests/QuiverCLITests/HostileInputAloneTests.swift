import Foundation
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverTestSupport
import QuiverTopology
import Testing

/// Hostile files, arguments, run directories and ownership cases through the `quiver` binary, as
/// a user (or someone who is not root) would hand them to it: each gets its exact error, a
/// non-zero exit, no crash and no hang — and the host is compared before and after (every
/// namespace; links, qdiscs and rules of the host and of the fabric namespace; every file under
/// /run/quiver and the victims' paths). *Alone*: scripts/test.sh runs this suite on its own, so
/// nothing else changes the host meanwhile.
@Suite(.serialized) struct HostileInputAloneTests {
    static let dir = NSTemporaryDirectory() + "quiver-hostile-\(getpid())"

    init() throws {
        try FileManager.default.createDirectory(atPath: Self.dir, withIntermediateDirectories: true)
        // A real 64 MiB qcow2 for the disk-size case.
        if !FileManager.default.fileExists(atPath: Self.dir + "/base.qcow2") {
            _ = try witnessText(["qemu-img", "create", "-q", "-f", "qcow2", Self.dir + "/base.qcow2", "64M"])
        }
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = Self.dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A fabric namespace for applies (made before the first snapshot), deleted after.
    func withFabric<T>(_ body: (String) throws -> T) throws -> T {
        let name = "qh-" + String(UUID().uuidString.prefix(6)).lowercased()
        try NetworkNamespace.create(named: name)
        defer { try? NetworkNamespace.delete(named: name) }
        return try body(name)
    }

    /// Runs `quiver ARGS`, killed if it takes longer than `seconds`.
    func bounded(_ args: [String], seconds: Double = 30, environment: [String: String] = [:]) throws
        -> (status: Int32, signaled: Bool, stderr: String, timedOut: Bool) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: quiverBinary)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(seconds)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline { kill(p.processIdentifier, SIGKILL); timedOut = true; break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, p.terminationReason == .uncaughtSignal, String(decoding: e, as: UTF8.self), timedOut)
    }

    /// `quiver ARGS` must exit `exit` with every one of `parts` in its standard error, and leave
    /// the host as it found it.
    func refused(_ args: [String], exit: Int32, _ parts: [String], namespaces: [String] = [], watched: [String] = [],
                 environment: [String: String] = [:], sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let before = HostSnapshot.take(namespaces: namespaces, watched: [Self.dir] + watched)
        let r = try bounded(args, environment: environment)
        let what = args.joined(separator: " ").prefix(120)
        #expect(!r.timedOut, "\(what): no answer within 30 s", sourceLocation: sourceLocation)
        #expect(!r.signaled, "\(what): crashed (signal \(r.status))", sourceLocation: sourceLocation)
        #expect(r.status == exit, "\(what): exit \(r.status), want \(exit): \(r.stderr.prefix(400))", sourceLocation: sourceLocation)
        for p in parts { #expect(r.stderr.contains(p), "\(what): want \(p.debugDescription) in \(r.stderr.prefix(600).debugDescription)", sourceLocation: sourceLocation) }
        let after = HostSnapshot.take(namespaces: namespaces, watched: [Self.dir] + watched)
        let changed = after.difference(from: before)
        #expect(changed.isEmpty, "\(what) changed the host: \(changed.prefix(10))", sourceLocation: sourceLocation)
    }

    static func topology(_ name: String = "hz", vnic: String = "", extraHost: String = "") -> String {
        """
        name: \(name)
        switches:
          - name: sw0
        tenants:
          - name: acme
            hosts:
              - name: web
                vnics:
                  - name: net0
                    over: sw0
                    ips: [10.21.0.11/24]
        \(vnic)
        \(extraHost)
        """
    }

    // MARK: Files

    /// (file name, text, what stderr says). VNIC lines land on line 12; the VNIC is at 9:13.
    static let files: [(String, String, [String])] = [
        ("hex-rate", topology(vnic: "            maxbw: 0x10M"), [":12:20: error: maxbw: \"0x10M\" is not a bandwidth"]),
        ("exponent-rate", topology(vnic: "            maxbw: 1e3M"), [":12:20: error: maxbw: \"1e3M\" is not a bandwidth"]),
        ("tiny-rate", topology(vnic: "            maxbw: 0.001K"), [":12:20: error: maxbw: bandwidth \"0.001K\" is below 8K"]),
        ("fraction-of-a-bit", topology(vnic: "            floor: 0.0000001K"), [":12:20: error: floor: bandwidth \"0.0000001K\" is not a whole number of bits per second"]),
        ("signed-mtu", topology(vnic: "            mtu: \"+1500\""), [":12:18: error: mtu \"+1500\" must be a number from 68 to 65535"]),
        ("hex-burst", topology(vnic: "            burst: 0x10000"), [":12:20: error: burst \"0x10000\" must be a number of bytes"]),
        ("signed-mac", topology(vnic: "            mac: \"+2:00:00:00:00:01\""), [":12:18: error: \"+2:00:00:00:00:01\" is not a MAC address"]),
        ("nul-in-address", topology(vnic: "            gateway: \"10.21.0.1\\0x\""), [":12:22: error: gateway: \"10.21.0.1\\u{0}x\" is not an IPv4 or IPv6 address"]),
        ("signed-prefix", topology(vnic: "            allowed-ips: [\"10.21.0.11/+24\"]"), [":12:27: error: allowed-ips: \"10.21.0.11/+24\": prefix length \"+24\" is not a number"]),
        ("vnic-lo", topology().replacingOccurrences(of: "name: net0", with: "name: lo"), [":9:13: error: VNIC name \"lo\" is reserved"]),
        ("vnic-default", topology().replacingOccurrences(of: "name: net0", with: "name: default"), [":9:13: error: VNIC name \"default\" is reserved"]),
        ("ipv6-multicast", topology().replacingOccurrences(of: "[10.21.0.11/24]", with: "[\"ff02::5/64\"]"), [":9:13: error: address ff02::5/64 of web/net0 is a multicast address"]),
        ("ipv4-mapped", topology().replacingOccurrences(of: "[10.21.0.11/24]", with: "[\"::ffff:10.21.0.11/128\"]"), [":9:13: error: address ::ffff:10.21.0.11/128 of web/net0 is an IPv4-mapped IPv6 address"]),
        ("loopback", topology().replacingOccurrences(of: "[10.21.0.11/24]", with: "[127.0.0.2/8]"), [":9:13: error: address 127.0.0.2/8 of web/net0 is a loopback address"]),
        ("unspecified", topology().replacingOccurrences(of: "[10.21.0.11/24]", with: "[0.0.0.0/8]"), [":9:13: error: address 0.0.0.0/8 of web/net0 is the unspecified address"]),
        ("gateway-multicast", topology(vnic: "            gateway: 224.0.0.1"), [":9:13: error: gateway 224.0.0.1 of web/net0 is a multicast address"]),
        ("ipv6-small-mtu", topology(vnic: "            mtu: 1000\n            link-local: on"), [":9:13: error: VNIC web/net0 has IPv6 (an address or link-local) but an MTU of 1000"]),
        ("topology-cap", topology("cap"), [":1:1: error: topology name \"cap\" is reserved"]),
        ("topology-path", topology("../../x"), [":1:1: error: topology name \"../../x\" may use only letters, digits and _"]),
        ("duplicate-protection", topology(vnic: "            protection: [mac-nospoof, ip-nospoof]\n            protection: []"),
         [":13:13: error: duplicate key `protection` in vnic (first at 12:13"]),
        ("alias", topology(vnic: "            protection: &p [mac-nospoof]\n            allowed-ips: *p"), ["error: a YAML alias (*name) repeats the value written here"]),
        ("anchors", "name: hz\n" + (0..<20).map { "k\($0): &a\($0) x" }.joined(separator: "\n"), [":18:6: error: more than 16 YAML anchors (&name)"]),
        ("deep-flow", "name: hz\ntenants: " + String(repeating: "[", count: 300_000), [":2:", "error: the file nests too deeply here"]),
        ("deep-block", "name: hz\ntenants:\n" + (0..<1500).map { String(repeating: " ", count: $0) + "- " }.joined(separator: "\n"), ["error: the file nests too deeply here"]),
        ("nested-40", "name: hz\ntenants: " + String(repeating: "[", count: 40) + String(repeating: "]", count: 40), [":2:", "error: the file nests deeper than 32 levels here"]),
        ("escape-sequence", topology(vnic: "            mode: \"\\e]0;pwned\\a\""), [":12:19: error: unknown mode \"\\u{1b}]0;pwned\\u{7}\""]),
        ("error-flood", topology(vnic: (0..<400).map { "            bogus\($0): 1" }.joined(separator: "\n")), ["… and 200 more errors"]),
        ("cmdline-newline", topology(extraHost: "      - name: g1\n        kind: vm\n        kernel: /etc/hostname\n        cmdline: \"a\\ninit=/bin/sh\"\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"),
         [":16:9: error: vm host g1: cmdline holds a control character (U+000A)"]),
        ("kernel-directory", topology(extraHost: "      - name: g1\n        kind: vm\n        kernel: /etc\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"),
         [":15:9: error: vm host g1: kernel /etc is not a readable file: it is a directory"]),
        ("disk-device", topology(extraHost: "      - name: g1\n        kind: vm\n        kernel: /etc/hostname\n        disk: /dev/zero\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"),
         [":16:9: error: vm host g1: disk /dev/zero is not a file the guest can write: it is a character device"]),
        // Real guest images: a missing image, a file qemu-img would call raw that is no disk, a
        // device, an overlay smaller than its base, agent keys on a namespace host, and a DHCP
        // switch whose tenants' subnets overlap.
        ("image-missing", topology(extraHost: "      - name: g1\n        kind: vm\n        image: /nonexistent/base.qcow2\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"),
         [":15:9: error: vm host g1: image /nonexistent/base.qcow2 cannot be used: it does not exist"]),
        ("image-not-a-disk", topology(extraHost: "      - name: g1\n        kind: vm\n        image: /etc/hostname\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"),
         [":15:9: error: vm host g1: image /etc/hostname is not a disk image Quiver boots: qemu-img reads it as raw, but it holds no partition table or file system"]),
        ("image-device", topology(extraHost: "      - name: g1\n        kind: vm\n        image: /dev/zero\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"),
         [":15:9: error: vm host g1: image /dev/zero cannot be used: it is a character device"]),
        ("disk-size-small", topology(extraHost: "      - name: g1\n        kind: vm\n        image: \(dir)/base.qcow2\n        disk-size: 16M\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"),
         [":16:9: error: vm host g1: disk-size 16777216 bytes is smaller than the image's 67108864 bytes (qcow2)"]),
        ("agent-on-netns", topology(vnic: "").replacingOccurrences(of: "      - name: web\n", with: "      - name: web\n        agent: qga\n"),
         [":8:16: error: `agent` belongs to `kind: vm` hosts; web is a netns host (add `kind: vm` or remove `agent`)"]),
        ("dhcp-overlap", topology(extraHost: "  - name: other\n    hosts:\n      - {name: g1, kind: vm, kernel: /etc/hostname, vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]}\n      - {name: g2, kind: vm, kernel: /etc/hostname, vnics: [{name: eth0, over: sw0, ips: [10.21.0.32/24]}]}")
            .replacingOccurrences(of: "  - name: sw0\n", with: "  - name: sw0\n    dhcp: true\n")
            .replacingOccurrences(of: "      - name: web\n", with: "      - name: h1\n        kind: vm\n        kernel: /etc/hostname\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.33/24]}]\n      - name: web\n"),
         [":4:11: error: switch sw0 has `dhcp: true`, and tenants acme (10.21.0.0/24) and other (10.21.0.0/24) have overlapping subnets on it"]),
        ("two-documents", topology() + "\n---\nname: other\n", ["error: YAML syntax"]),
    ]

    @Test func hostileFilesExitTwoAndChangeNothing() throws {
        try withFabric { ns in
            for (name, text, parts) in Self.files {
                let f = try write(name + ".yaml", text)
                try refused(["apply", f, "--fabric-netns", ns], exit: 2, parts.map { $0.hasPrefix(":") ? f + $0 : $0 }, namespaces: [ns])
                try refused(["validate", f], exit: 2, parts.map { $0.hasPrefix(":") ? f + $0 : $0 })
            }
        }
    }

    @Test func filesThatAreNotRegularOrTooLargeAreNotRead() throws {
        let fifo = Self.dir + "/fifo.yaml"
        mkfifo(fifo, 0o600)
        let big = Self.dir + "/big.yaml"
        try Data(count: 5 << 20).write(to: URL(fileURLWithPath: big))
        let binary = Self.dir + "/binary.yaml"
        try Data([0x6E, 0x61, 0x6D, 0x65, 0x3A, 0x20, 0xFF, 0xFE, 0x00]).write(to: URL(fileURLWithPath: binary))
        let link = Self.dir + "/link.yaml"
        symlink(fifo, link)
        try withFabric { ns in
            for (path, part) in [(fifo, "\"\(fifo)\" is not a regular file (a FIFO)"), ("/dev/zero", "\"/dev/zero\" is not a regular file (a character device)"),
                                 (Self.dir, "\"\(Self.dir)\" is not a regular file (a directory)"),
                                 (big, "\"\(big)\" is 5242880 bytes; topology files are at most 4194304"),
                                 (binary, "\"\(binary)\" is not UTF-8 text"), (link, "\"\(link)\" is not a regular file (a FIFO)")] {
                try refused(["apply", path, "--fabric-netns", ns], exit: 2, ["error: " + part], namespaces: [ns])
            }
        }
    }

    /// A guest file the topology file's owner cannot read is refused, as libvirt would not let
    /// a domain of that user open it.
    /// `firmware: uefi` where OVMF is not installed (CI's machines: scripts/setup.sh installs no
    /// ovmf) says so, and changes nothing.
    @Test func uefiWithoutOVMFIsRefused() throws {
        guard !FileManager.default.fileExists(atPath: "/usr/share/OVMF/OVMF_CODE_4M.fd"), !FileManager.default.fileExists(atPath: "/usr/share/OVMF/OVMF_CODE.fd") else {
            print("uefiWithoutOVMFIsRefused: skipped: OVMF is installed here, so firmware: uefi is valid")
            return
        }
        let f = try write("uefi.yaml", Self.topology(extraHost: "      - name: g1\n        kind: vm\n        image: \(Self.dir)/base.qcow2\n        firmware: uefi\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"))
        try withFabric { ns in
            try refused(["apply", f, "--fabric-netns", ns], exit: 2, ["\(f):16:9: error: vm host g1: firmware uefi needs OVMF, and it is not installed"], namespaces: [ns])
        }
    }

    @Test func guestFilesMustBeTheTopologyOwnersToRead() throws {
        let kernel = Self.dir + "/kernel-root-only"
        try Data("kernel".utf8).write(to: URL(fileURLWithPath: kernel))
        chmod(kernel, 0o600)
        let f = try write("users.yaml", Self.topology(extraHost: "      - name: g1\n        kind: vm\n        kernel: \(kernel)\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"))
        chown(f, 65534, 65534)
        try refused(["validate", f], exit: 2, ["\(f):15:9: error: vm host g1: kernel \(kernel) is not a readable file: uid 65534, who owns the topology file, cannot read it"])
    }

    // MARK: Arguments

    @Test func namesNeverBecomePaths() throws {
        let victim = Self.dir + "/victim"
        try FileManager.default.createDirectory(atPath: victim + "/keep", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: victim + "/keep/file"))
        let up = "../../.." + victim
        try withFabric { ns in
            let fab = ["--fabric-netns", ns]
            for (args, part) in [
                (["destroy", up] + fab, "is no topology file, and not a topology name: topology name"),
                (["destroy", "lab/../../x"] + fab, "is no topology file, and not a topology name"),
                (["destroy", ""] + fab, "is no topology file, and not a topology name: topology name is empty"),
                (["show", up] + fab, "not a topology name"),
                (["verify", up] + fab, "not a topology name"),
                (["stats", "../x"] + fab, "is no topology file, applied topology or VNIC link"),
                (["vm", "console", ".."], "host name \"..\" may use only letters, digits and _"),
                (["vm", "console", "../x"], "topology name \"..\" may use only letters, digits and _"),
                (["vm", "stop", "a/b/c"], "is not TOPOLOGY/HOST or HOST"),
                (["vm", "console", "x y"], "host name \"x y\" may use only letters"),
                (["links", "--netns", "../../proc/1/ns/net"], "--netns: network namespace name \"../../proc/1/ns/net\" may use only letters"),
                (["links", "--netns", ".hidden"], "--netns: network namespace name \".hidden\""),
                (["cap", "show", "eth0", "--netns", "/proc/self/ns/net"], "--netns: network namespace name \"/proc/self/ns/net\""),
                (["apply", try write("ok.yaml", Self.topology()), "--fabric-netns", "../" + ns], "--fabric-netns: network namespace name"),
                (["destroy", "hz", "--fabric-netns", ""], "--fabric-netns: network namespace name is empty"),
            ] {
                try refused(args, exit: 2, [part], namespaces: [ns], watched: [victim])
            }
        }
        #expect(FileManager.default.fileExists(atPath: victim + "/keep/file"))
    }

    @Test func capValuesAndDevicesAreRefused() throws {
        try withFabric { ns in
            let h = try NetlinkHandle(namespace: .named(ns))
            try h.addLink("d0", Veth(peer: "d0p", peerSettings: LinkSettings(up: true)), LinkSettings(up: true))
            let at = ["--netns", ns]
            for (args, exit, part) in [
                (["cap", "set", "d0", "--maxbw", "0x10M"] + at, Int32(2), "--maxbw: \"0x10M\" is not a bandwidth"),
                (["cap", "set", "d0", "--maxbw", "0.0001"] + at, 2, "--maxbw: bandwidth \"0.0001\" is below 8K"),
                (["cap", "set", "d0", "--maxbw", "10M", "--flow", "web,transport=tcp,maxbw=1e3M"] + at, 2, "--flow web,transport=tcp,maxbw=1e3M: \"1e3M\" is not a bandwidth"),
                (["cap", "set", "d0", "--maxbw", "10M", "--flow", "web,transport=tcp,local-port=+80,maxbw=1M"] + at, 2, "local-port must be 1–65535"),
                (["cap", "set", "d0", "--maxbw", "10M", "--burst", "+65536"] + at, 2, "--burst: \"+65536\" must be a number of bytes"),
                (["cap", "set", "d%d", "--maxbw", "10M"] + at, 2, "contains '%'"),
                (["cap", "set", "lo", "--maxbw", "10M"] + at, 1, "lo is the loopback device; nothing was changed"),
                (["cap", "clear", "lo"] + at, 1, "lo is the loopback device"),
            ] {
                try refused(args, exit: exit, [part], namespaces: [ns])
            }
        }
    }

    /// Two caps whose owner tags hash to the same tc block: the second is refused before it
    /// changes anything (else its redirects would take the first's traffic).
    @Test func sharedTCBlocksAreRefused() throws {
        try withFabric { ns in
            let h = try NetlinkHandle(namespace: .named(ns))
            // "quiver:cap/c6j/from" and "quiver:cap/cack/to" hash to the same block.
            for d in ["c6j", "cack"] {
                try h.addLink(try InterfaceName(validating: d), Veth(peer: try InterfaceName(validating: d + "p"), peerSettings: LinkSettings(up: true)), LinkSettings(up: true))
            }
            let first = try quiver(["cap", "set", "c6j", "--netns", ns, "--maxbw", "10M"])
            #expect(first.status == 0, "\(first.stderr)")
            try refused(["cap", "set", "cack", "--netns", ns, "--maxbw", "10M"], exit: 1,
                        ["device c6j already carries a clsact hook bound to tc block", "which the caps of cack would share"], namespaces: [ns])
        }
    }

    // MARK: Run directory

    /// Each planted condition is made, the command refused with the file named and nothing
    /// changed (the victims least of all), and the condition removed again.
    @Test func plantedRunDirectoryStateIsRefused() throws {
        let topologies = "/run/quiver/topologies"
        _ = try TrustedDirectory.run(["topologies"], create: true)
        _ = try TrustedDirectory.run(["vms"], create: true)
        let victim = Self.dir + "/victim.json"
        // A name of this run's own, so that nothing of an earlier run is in the way.
        let hz = "h" + String(UUID().uuidString.filter(\.isLetter).prefix(4)).lowercased()
        try Data("{\"topology\": \"\(hz)\", \"file\": \"/etc/shadow\"}".utf8).write(to: URL(fileURLWithPath: victim))
        let file = try write("\(hz).yaml", Self.topology(hz))
        try withFabric { ns in
            // A journal that is a link elsewhere.
            symlink(victim, topologies + "/\(hz).json")
            try refused(["show", hz, "--fabric-netns", ns], exit: 1, ["\"/run/quiver/topologies/\(hz).json\" is a symbolic link (to \"\(victim)\")"],
                        namespaces: [ns], watched: [victim])
            try refused(["apply", file, "--fabric-netns", ns], exit: 1, ["\"/run/quiver/topologies/\(hz).json\" is a symbolic link"], namespaces: [ns], watched: [victim])
            unlink(topologies + "/\(hz).json")
            // A FIFO where a journal goes.
            mkfifo(topologies + "/\(hz).json", 0o600)
            try refused(["list"], exit: 1, ["\"/run/quiver/topologies/\(hz).json\" is not a regular file"])
            unlink(topologies + "/\(hz).json")
            // A lock file that is a link.
            let lock = topologies + "/" + TopologyLock.fileName(try TopologyName(validating: hz))
            symlink(victim, lock)
            try refused(["apply", file, "--fabric-netns", ns], exit: 1, ["\"\(lock)\" is a symbolic link"], namespaces: [ns], watched: [victim])
            unlink(lock)
            // The state directory writable by others.
            chmod(topologies, 0o777)
            try refused(["list"], exit: 1, ["\"/run/quiver/topologies\" is writable by group or others (mode 777)"])
            chmod(topologies, 0o700)
            // Owned by someone else.
            chown(topologies, 65534, 65534)
            try refused(["apply", file, "--fabric-netns", ns], exit: 1, ["\"/run/quiver/topologies\" is owned by uid 65534"], namespaces: [ns])
            chown(topologies, 0, 0)
            // A guest directory with a file Quiver did not put there: refused while planning.
            let guestDir = "/run/quiver/vms/\(hz)/g1"
            try FileManager.default.createDirectory(atPath: guestDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            chmod("/run/quiver/vms/\(hz)", 0o700)
            try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: guestDir + "/evil.sh"))
            try refused(["apply", file, "--fabric-netns", ns], exit: 1, ["\"\(guestDir)\" holds \"evil.sh\", which Quiver does not keep there; it is not reused"],
                        namespaces: [ns])
            try refused(["destroy", hz, "--fabric-netns", ns], exit: 1, ["\"\(guestDir)\" still holds \"evil.sh\", which Quiver did not make"], namespaces: [ns])
            try FileManager.default.removeItem(atPath: "/run/quiver/vms/\(hz)")
            // The guests' directory is a link to a victim tree: nothing in it is touched.
            let tree = Self.dir + "/vms-victim"
            try FileManager.default.createDirectory(atPath: tree + "/\(hz)/g1", withIntermediateDirectories: true)
            try Data("keep".utf8).write(to: URL(fileURLWithPath: tree + "/\(hz)/g1/record.json"))
            try FileManager.default.moveItem(atPath: "/run/quiver/vms", toPath: Self.dir + "/vms-saved")
            symlink(tree, "/run/quiver/vms")
            defer {
                unlink("/run/quiver/vms")
                try? FileManager.default.moveItem(atPath: Self.dir + "/vms-saved", toPath: "/run/quiver/vms")
            }
            try refused(["destroy", hz, "--fabric-netns", ns], exit: 1, ["\"/run/quiver/vms\" is a symbolic link (to \"\(tree)\")"], namespaces: [ns], watched: [tree])
            try refused(["vm", "list"], exit: 1, ["\"/run/quiver/vms\" is a symbolic link"], watched: [tree])
            #expect(FileManager.default.fileExists(atPath: tree + "/\(hz)/g1/record.json"))
        }
    }

    // MARK: Ownership

    /// `q2e5` and `qdcba` hash to the same link group (0x513a22b8): one may not be applied beside
    /// the other, destroying one leaves the other alone, and a foreign link someone put in a
    /// topology's group survives its destroy.
    @Test func ownershipIsDecidedByTheFullTag() throws {
        #expect(KernelNames("q2e5").group == KernelNames("qdcba").group)
        let a = try write("q2e5.yaml", Self.topology("q2e5"))
        let b = try write("qdcba.yaml", Self.topology("qdcba").replacingOccurrences(of: "10.21.0.11", with: "10.22.0.11"))
        try withFabric { ns in
            let fab = ["--fabric-netns", ns]
            let applied = try quiver(["apply", a] + fab)
            #expect(applied.status == 0, "\(applied.stderr)")
            defer { _ = try? quiver(["destroy", "q2e5"] + fab) }
            try refused(["apply", b] + fab, exit: 1, ["quiver: nothing was changed:", "link group 0x513a22b8 of topology qdcba",
                                                     "topology q2e5's links are in it: the two names hash to the same group; rename one of the topologies"],
                        namespaces: [ns])
            // Its destroy finds nothing of its own in the shared group.
            let before = HostSnapshot.take(namespaces: [ns])
            let d = try quiver(["destroy", "qdcba"] + fab)
            #expect(d.status == 0 && d.stdout.contains("qdcba: nothing to destroy"), "\(d.stdout) \(d.stderr)")
            #expect(HostSnapshot.take(namespaces: [ns]).difference(from: before).isEmpty)
            // quiver cap does not take over the topology's devices.
            try refused(["cap", "set", "q2e5-web-net0", "--netns", ns, "--maxbw", "5M"], exit: 1,
                        ["q2e5-web-net0 belongs to topology q2e5 (tag quiver:q2e5/vnic/acme/web/net0); nothing was changed — change its caps in the topology's file"],
                        namespaces: [ns])
            try refused(["cap", "clear", "q2e5-web-net0", "--netns", ns], exit: 1, ["q2e5-web-net0 belongs to topology q2e5"], namespaces: [ns])
            try refused(["cap", "set", "q2e5-sw0", "--netns", ns, "--maxbw", "5M"], exit: 1, ["q2e5-sw0 belongs to topology q2e5 (tag quiver:q2e5/switch/sw0)"], namespaces: [ns])
            try refused(["cap", "set", "net0", "--netns", "q2e5-acme-web", "--maxbw", "5M"], exit: 1,
                        ["net0 is in netns q2e5-acme-web, a host of topology q2e5"], namespaces: [ns, "q2e5-acme-web"])
            // A link someone put in the topology's group is not the topology's.
            let h = try NetlinkHandle(namespace: .named(ns))
            try h.addLink("other0", Bridge(stp: false), LinkSettings(group: KernelNames("q2e5").group))
            let gone = try quiver(["destroy", "q2e5"] + fab)
            #expect(gone.status == 0, "\(gone.stderr)")
            #expect(try h.links().map(\.name).sorted() == ["lo", "other0"])
        }
    }

    // MARK: Guest ids

    /// The range guests' uids come from (`QUIVER_GUEST_IDS`): malformed, or holding a user or a
    /// group of the host, it is refused before anything changes.
    @Test func guestIDRangesThatCollideOrDoNotParseAreRefused() throws {
        let kernel = Self.dir + "/vmlinuz-ids"
        try Data("kernel".utf8).write(to: URL(fileURLWithPath: kernel))
        let vm = "      - name: g1\n        kind: vm\n        kernel: \(kernel)\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"
        let file = try write("ids.yaml", Self.topology("ids", extraHost: vm))
        try withFabric { ns in
            let fab = ["--fabric-netns", ns]
            for (range, want) in [("0-100", "QUIVER_GUEST_IDS \"0-100\" is not FIRST-LAST with 1000 ≤ FIRST ≤ LAST < 4294967295 in decimal"),
                                  ("5000-4000", "QUIVER_GUEST_IDS \"5000-4000\" is not FIRST-LAST"),
                                  ("0x1000-0x2000", "QUIVER_GUEST_IDS \"0x1000-0x2000\" is not FIRST-LAST"),
                                  ("1000-4294967295", "QUIVER_GUEST_IDS \"1000-4294967295\" is not FIRST-LAST"),
                                  ("70000", "QUIVER_GUEST_IDS \"70000\" is not FIRST-LAST"),
                                  ("65530-65540", "the guest id range 65530-65540 holds user nobody (id 65534) of /etc/passwd"),
                                  ("65534-65534", "the guest id range 65534-65534 holds user nobody (id 65534) of /etc/passwd: guests must not share an id with anyone")] {
                try refused(["apply", file] + fab, exit: 1, [want], namespaces: [ns], environment: ["QUIVER_GUEST_IDS": range])
            }
            // A free range is taken.
            let ok = try bounded(["apply", file, "--dry-run"] + fab, environment: ["QUIVER_GUEST_IDS": "3000000000-3000000009"])
            #expect(ok.status == 0, "\(ok.stderr)")
        }
    }

    // MARK: An apply that fails anyway

    /// A guest whose kernel is not a kernel passes validation (Quiver does not read kernels), and
    /// qemu refuses it once the namespace, switch, VNIC and rules are made: the apply removes what
    /// it made, says so, and the host is as before — both on a first apply and on an edit.
    @Test func aFailedApplyRemovesWhatItMade() throws {
        let junk = Self.dir + "/not-a-kernel"
        try Data((0..<65536).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: junk))
        let vm = "      - name: g1\n        kind: vm\n        kernel: \(junk)\n        initrd: \(junk)\n        accel: tcg\n        vnics: [{name: eth0, over: sw0, ips: [10.21.0.31/24]}]"
        let good = try write("rb.yaml", Self.topology("rb"))
        let bad = try write("rb-vm.yaml", Self.topology("rb", extraHost: vm))
        try withFabric { ns in
            let fab = ["--fabric-netns", ns]
            try refused(["apply", bad] + fab, exit: 1, ["qemu for rb-g1 exited while starting: qemu: linux kernel too old to load a ram disk", "apply of rb stopped; it removed what it had made (",
                                                       "1 namespace", "the rules", "`quiver destroy rb` removes it all"], namespaces: [ns])
            // On an edit, what the apply made goes (the guest's directory; its tap went with qemu),
            // what it changed stays — the rules now name the guest's NIC — and says so; applying the
            // file that was there before brings the host back to exactly where it was.
            let applied = try quiver(["apply", good] + fab)
            #expect(applied.status == 0, "\(applied.stderr)")
            defer { _ = try? quiver(["destroy", "rb"] + fab) }
            let before = HostSnapshot.take(namespaces: [ns, "rb-acme-web"])
            let r = try bounded(["apply", bad] + fab)
            #expect(r.status == 1 && r.stderr.contains("apply of rb stopped; it removed what it had made (1 guest)")
                    && r.stderr.contains("What it changed in objects that were there before stays as it is now: `quiver apply` of the file again converges"),
                    "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "/run/quiver/vms/rb"))
            let back = try quiver(["apply", good] + fab)
            #expect(back.status == 0 && back.stdout.contains("rb: created 0, changed 1, deleted 0"), "\(back.stdout)")
            // (Its record says when it was last applied: that one file is newer.)
            let after = HostSnapshot.take(namespaces: [ns, "rb-acme-web"]).difference(from: before).filter { !$0.contains("/run/quiver/topologies/rb.json") }
            #expect(after.isEmpty, "\(after)")
            #expect(try quiver(["apply", good] + fab).stdout.contains("rb: no changes"))
        }
    }
}
