import Foundation
import QuiverFabric
import QuiverKernel
import QuiverTopology
import Testing

/// Pure: what a hostile topology file or value gets — the exact error, where it is, and no crash
/// or hang. (The same inputs through the CLI, with the host compared before and after, are in
/// QuiverCLITests' HostileInputAloneTests.)
@Suite struct HostileInputTests {
    /// A valid one-VNIC topology with `vnic` spliced into the VNIC's mapping (from line 12) and
    /// `host` into the host's; the VNIC starts at 9:13.
    static func topology(name: String = "hx", vnic: String = "", host: String = "", tenantHosts: String? = nil) -> String {
        """
        name: \(name)
        switches:
          - name: sw0
        tenants:
          - name: acme
            hosts:
        \(tenantHosts ?? """
              - name: web
        \(host)        vnics:
                  - name: net0
                    over: sw0
                    ips: [10.20.0.11/24]
        \(vnic)
        """)
        """
    }

    func errors(_ text: String, file: String = "h.yaml", owner: UInt32? = nil) -> String {
        let start = Date()
        defer { #expect(Date().timeIntervalSince(start) < 10, "took \(Date().timeIntervalSince(start)) s") }
        do {
            let t = try TopologyParser.parse(text, file: file, fileOwner: owner)
            return "valid: \(t.name)"
        } catch {
            return "\(error)"
        }
    }

    // MARK: Values that reach the kernel or a shaper

    @Test(arguments: [
        ("0x10M", "maxbw: \"0x10M\" is not a bandwidth: write a decimal number and a unit"),
        ("1e3M", "maxbw: \"1e3M\" is not a bandwidth"),
        ("+5M", "maxbw: \"+5M\" is not a bandwidth"),
        ("-1M", "maxbw: \"-1M\" is not a bandwidth"),
        (".5M", "maxbw: \".5M\" is not a bandwidth"),
        ("5.M", "maxbw: \"5.M\" is not a bandwidth"),
        ("infM", "maxbw: \"infM\" is not a bandwidth"),
        ("0.0000001K", "maxbw: bandwidth \"0.0000001K\" is not a whole number of bits per second"),
        ("0.001K", "maxbw: bandwidth \"0.001K\" is below 8K, the smallest rate the kernel's shapers can honour; use 0 to block"),
        ("7999", "valid: hx"),  // a bare number is Mbit/s
        ("0.000001", "maxbw: bandwidth \"0.000001\" is below 8K"),
        ("401G", "maxbw: bandwidth \"401G\" is above the 400G Quiver supports"),
        ("99999999999999999999G", "maxbw: \"99999999999999999999G\" is not a bandwidth"),
        ("10Mbps", "maxbw: unknown bandwidth unit in \"10Mbps\""),
    ])
    func ratesAreDecimalAndExact(_ rate: String, _ expected: String) {
        let e = errors(Self.topology(vnic: "            maxbw: \"\(rate)\""))
        if expected.hasPrefix("valid") { #expect(e == expected) } else { #expect(e.contains("h.yaml:12:20: error: " + expected), "\(e)") }
    }

    @Test func aTinyRateIsNeverABlock() throws {
        #expect(try Bitrate("0") == Bitrate(bitsPerSecond: 0))
        #expect(try Bitrate("8K") == .kbit(8))
        #expect(try Bitrate("1.5G") == Bitrate(bitsPerSecond: 1_500_000_000))
        #expect(throws: InvalidValue.self) { try Bitrate("0.0001") }
        #expect(throws: InvalidValue.self) { try Bitrate("0x1") }
        // What a rate prints reads back as that rate (found by scripts/fuzz.sh: 10001 bit/s
        // printed as "10001", which reads back as 10001 Mbit/s).
        for bits: UInt64 in [10001, 8001, 123_456_789, 1_500_000_000, 8000, 400_000_000_000] {
            let r = Bitrate(bitsPerSecond: bits)
            #expect(try Bitrate(r.description) == r, "\(bits) prints as \(r)")
        }
    }

    @Test(arguments: [
        ("            mtu: \"+1500\"", "h.yaml:12:18: error: mtu \"+1500\" must be a number from 68 to 65535"),
        ("            mtu: \"0x5dc\"", "h.yaml:12:18: error: mtu \"0x5dc\" must be a number from 68 to 65535"),
        ("            burst: \"+65536\"", "h.yaml:12:20: error: burst \"+65536\" must be a number of bytes from 1514"),
        ("            burst: 99999999999", "h.yaml:12:20: error: burst \"99999999999\" must be a number of bytes from 1514"),
        ("            flows: [{name: f, transport: tcp, local-port: \"+80\", maxbw: 1M}]", "local-port \"+80\" must be a port from 1 to 65535"),
        ("            mac: \"+2:00:00:00:00:01\"", "h.yaml:12:18: error: \"+2:00:00:00:00:01\" is not a MAC address"),
        ("            mac: \"02:00:00:00:00:01:\"", "is not a MAC address"),
        ("            mac: \"02-00:00:00:00:01\"", "is not a MAC address"),
        ("            allowed-ips: [\"10.20.0.11/+24\"]", "allowed-ips: \"10.20.0.11/+24\": prefix length \"+24\" is not a number"),
        ("            gateway: \"10.20.0.1\\0junk\"", "h.yaml:12:22: error: gateway: \"10.20.0.1\\u{0}junk\" is not an IPv4 or IPv6 address"),
    ])
    func numbersMACsAndAddressesAreStrict(_ line: String, _ expected: String) {
        let e = errors(Self.topology(vnic: line))
        #expect(e.contains(expected), "\(e)")
    }

    // MARK: Values the kernel would refuse halfway through an apply

    @Test(arguments: [
        ("ff02::5/64", "is a multicast address"), ("224.0.0.5/24", "is a multicast address"), ("127.0.0.2/8", "is a loopback address"),
        ("::1/128", "is a loopback address"), ("0.0.0.0/8", "is the unspecified address"), ("::/64", "is the unspecified address"),
        ("::ffff:10.20.0.12/128", "is an IPv4-mapped IPv6 address"), ("::10.20.0.12/128", "is a deprecated IPv4-compatible IPv6 address"),
        ("255.255.255.255/32", "is the limited broadcast address"),
    ])
    func unusableAddressesAreRefused(_ address: String, _ why: String) {
        let e = errors(Self.topology(vnic: "            ips: [\"\(address)\"]").replacingOccurrences(of: "            ips: [10.20.0.11/24]\n", with: ""))
        #expect(e.contains("h.yaml:9:13: error: address \(try! IPPrefix(address)) of web/net0 \(why)"), "\(e)")
    }

    @Test(arguments: ["lo", "all", "default"])
    func reservedVNICNamesAreRefused(_ name: String) {
        let e = errors(Self.topology().replacingOccurrences(of: "name: net0", with: "name: \(name)"))
        #expect(e.contains("h.yaml:9:13: error: VNIC name \"\(name)\" is reserved"), "\(e)")
    }

    @Test(arguments: [
        ("            gateway: 224.0.0.1", "gateway 224.0.0.1 of web/net0 is a multicast address"),
        ("            gateway: 10.20.0.11", "gateway 10.20.0.11 of web/net0 is the VNIC's own address"),
        ("            allowed-ips: [ff00::/8]", "allowed-ips ff00::/8 of web/net0 is a multicast address"),
        ("            allowed-ips: [127.0.0.0/8]", "allowed-ips 127.0.0.0/8 of web/net0 is a loopback address"),
        ("            mtu: 1000\n            link-local: on", "VNIC web/net0 has IPv6 (an address or link-local) but an MTU of 1000"),
    ])
    func gatewaysAllowedIPsAndMTUsAreChecked(_ line: String, _ expected: String) {
        let e = errors(Self.topology(vnic: line))
        #expect(e.contains("h.yaml:9:13: error: " + expected), "\(e)")
    }

    @Test(arguments: [("cap", "topology name \"cap\" is reserved"), ("../x", "topology name \"../x\" may use only letters, digits and _"),
                      ("a-b", "topology name \"a-b\" may use only letters"), ("toolong12", "topology name \"toolong12\" is longer than 8 bytes")])
    func topologyNamesAreNames(_ name: String, _ expected: String) {
        let e = errors(Self.topology(name: name))
        #expect(e.contains("h.yaml:1:1: error: " + expected), "\(e)")
    }

    // MARK: Guest files and command lines

    func vmHost(_ lines: String) -> String {
        Self.topology(tenantHosts: """
              - name: g1
                kind: vm
        \(lines)
                vnics:
                  - {name: eth0, over: sw0, ips: [10.20.0.31/24]}
        """)
    }

    /// `cpu-cap`: a whole percent of one CPU from 1 to 6400, on a guest only.
    @Test(arguments: [
        ("0", "h.yaml:10:18: error: cpu-cap \"0\" must be a number from 1 to 6400"),
        ("6401", "h.yaml:10:18: error: cpu-cap \"6401\" must be a number from 1 to 6400"),
        ("-50", "h.yaml:10:18: error: cpu-cap \"-50\" must be a number from 1 to 6400"),
        ("50.5", "h.yaml:10:18: error: cpu-cap \"50.5\" must be a number from 1 to 6400"),
        ("0x32", "h.yaml:10:18: error: cpu-cap \"0x32\" must be a number from 1 to 6400"),
        ("50%", "h.yaml:10:18: error: cpu-cap \"50%\" must be a number from 1 to 6400"),
        ("99999999999999999999", "h.yaml:10:18: error: cpu-cap \"99999999999999999999\" must be a number from 1 to 6400"),
        ("150", "valid: hx"),
    ])
    func cpuCapsArePercentsOfOneCPU(_ cap: String, _ expected: String) throws {
        let kernel = NSTemporaryDirectory() + "quiver-hx-kernel-\(UUID().uuidString)"
        try Data("kernel".utf8).write(to: URL(fileURLWithPath: kernel))
        defer { unlink(kernel) }
        let e = errors(vmHost("        kernel: \(kernel)\n        cpu-cap: \(cap)"))
        if expected.hasPrefix("valid") { #expect(e == expected) } else { #expect(e.contains(expected), "\(e)") }
    }

    @Test func aCPUCapIsForGuestsOnly() {
        let e = errors(Self.topology(host: "        cpu-cap: 50\n"))
        #expect(e.contains("h.yaml:8:18: error: `cpu-cap` belongs to `kind: vm` hosts; web is a netns host (add `kind: vm` or remove `cpu-cap`)"), "\(e)")
    }

    @Test func guestFilesMustBeRegularFilesTheOwnerMayRead() throws {
        let dir = NSTemporaryDirectory() + "quiver-hx-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let kernel = dir + "/vmlinuz"
        try Data("kernel".utf8).write(to: URL(fileURLWithPath: kernel))
        chmod(kernel, 0o600)
        symlink(kernel, dir + "/link")
        mkfifo(dir + "/fifo", 0o600)
        for (k, expected) in [(dir, "kernel \(dir) is not a readable file: it is a directory"),
                              (dir + "/link", "kernel \(dir)/link is not a readable file: it is a symbolic link (to \(kernel)); name the file itself"),
                              (dir + "/fifo", "kernel \(dir)/fifo is not a readable file: it is a FIFO"),
                              ("/dev/zero", "kernel /dev/zero is not a readable file: it is a character device")] {
            let e = errors(vmHost("        kernel: \(k)"))
            #expect(e.contains("h.yaml:9:9: error: vm host g1: " + expected), "\(e)")
        }
        #expect(errors(vmHost("        kernel: \(kernel)\n        disk: /dev/zero")).contains("disk /dev/zero is not a file the guest can write: it is a character device"))
        // Root's file, root's topology: fine. The same file named by a topology that uid 65534 owns: refused.
        #expect(errors(vmHost("        kernel: \(kernel)"), owner: 0) == "valid: hx")
        #expect(errors(vmHost("        kernel: \(kernel)"), owner: 65534).contains("uid 65534, who owns the topology file, cannot read it (mode 600, owner uid 0)"))
        chmod(kernel, 0o644)
        #expect(errors(vmHost("        kernel: \(kernel)"), owner: 65534) == "valid: hx")
        #expect(errors(vmHost("        kernel: \(kernel)\n        disk: \(kernel)"), owner: 65534).contains("cannot read and write it"))
    }

    @Test func guestCommandLinesAreOneLineOfBoundedLength() {
        #expect(errors(vmHost("        kernel: /etc/hostname\n        cmdline: \"quiet\\ninit=/bin/sh\"")).contains("vm host g1: cmdline holds a control character (U+000A)"))
        #expect(errors(vmHost("        kernel: /etc/hostname\n        cmdline: \(String(repeating: "a", count: 1100))")).contains("cmdline is 1100 bytes; at most 1024"))
    }

    // MARK: The document itself

    @Test func deepNestingIsAnErrorNotACrash() {
        let flow = "name: hx\ntenants: " + String(repeating: "[", count: 200_000)
        #expect(errors(flow).contains("h.yaml:2:"), "\(errors(flow).prefix(200))")
        #expect(errors(flow).contains("error: the file nests too deeply here (more than 32 levels of collections)"))
        var block = "name: hx\ntenants:\n"
        for i in 0..<2000 { block += String(repeating: " ", count: i) + "- \n" }
        #expect(errors(block).contains("the file nests too deeply here"))
        // 40 levels the scan lets through are still refused, precisely, where they are.
        let forty = "name: hx\ntenants: " + String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(errors(forty).contains("h.yaml:2:"), "\(errors(forty))")
        #expect(errors(forty).contains("the file nests deeper than 32 levels here"))
    }

    @Test func aliasesAndAnchorFloodsAreRefused() {
        // Billion laughs: nine levels of nine aliases.
        var laughs = "name: hx\nl0: &l0 [lol]\n"
        for i in 1...9 { laughs += "l\(i): &l\(i) [" + Array(repeating: "*l\(i - 1)", count: 9).joined(separator: ", ") + "]\n" }
        laughs += "tenants: *l9\n"
        let e = errors(laughs)
        #expect(e.contains("h.yaml:2:5: error: a YAML alias (*name) repeats the value written here"), "\(e)")
        var many = "name: hx\n"
        for i in 0..<20 { many += "k\(i): &a\(i) x\n" }
        #expect(errors(many).contains("h.yaml:18:6: error: more than 16 YAML anchors (&name)"), "\(errors(many))")
        let one = Self.topology(vnic: "            protection: &p [mac-nospoof]\n            allowed-ips: *p")
        #expect(errors(one).contains("error: a YAML alias (*name) repeats the value written here"))
    }

    @Test func duplicateKeysAreErrorsAtTheSecond() {
        let e = errors(Self.topology(vnic: "            protection: [mac-nospoof, ip-nospoof]\n            protection: []"))
        #expect(e.contains("h.yaml:13:13: error: duplicate key `protection` in vnic (first at 12:13; write each key once (YAML would keep only the last))"), "\(e)")
        let top = errors("name: hx\nname: hy\n" + Self.topology().split(separator: "\n", maxSplits: 1)[1])
        #expect(top.contains("h.yaml:2:1: error: duplicate key `name` in the topology"), "\(top)")
    }

    @Test func hostileTextIsEscapedAndCutShortInMessages() {
        let escape = errors(Self.topology(vnic: "            mode: \"\\e[31mred\\e[0m\""))
        #expect(escape.contains("unknown mode \"\\u{1b}[31mred\\u{1b}[0m\""), "\(escape)")
        #expect(!escape.contains("\u{1b}"))
        let long = String(repeating: "k", count: 100_000)
        let e = errors(Self.topology(vnic: "            mode: \(long)"))
        #expect(e.contains("unknown mode \"" + String(repeating: "k", count: 64) + "…\""), "\(e.prefix(300))")
        #expect(e.utf8.count < 2000, "the message is \(e.utf8.count) bytes")
    }

    @Test func errorsAreCapped() {
        var text = Self.topology()
        for i in 0..<400 { text += "\n            bogus\(i): 1" }
        let e = errors(text)
        #expect(e.contains("… and 200 more errors"), "\(e.suffix(200))")
        #expect(e.split(separator: "\n").count == 201)
    }

    @Test func manyDocumentsAndNonMappingsAreRefused() {
        #expect(errors(Self.topology() + "\n---\nname: two\n").contains("YAML syntax"))
        #expect(errors("- a\n- b\n").contains("h.yaml:1:1: error: the topology must be a mapping of keys to values"))
    }
}
