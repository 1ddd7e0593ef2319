import Foundation
import QuiverFabric
import QuiverKernel
import QuiverTopology
import QuiverVM
import Testing

/// Pure (qemu-img aside): the keys of real guest images and DHCP switches — every hostile value
/// a user could write gets its exact error at file:line:column, and a DHCP switch gives each
/// tenant a server with only its own leases.
@Suite struct ImageKeysTests {
    /// A scratch directory with a raw disk (an MBR signature), a qcow2 over nothing, a text file
    /// and a kernel; removed by the caller.
    static func files() throws -> String {
        let dir = NSTemporaryDirectory() + "quiver-img-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var disk = Data(count: 1 << 20)
        disk[510] = 0x55
        disk[511] = 0xAA
        try disk.write(to: URL(fileURLWithPath: dir + "/disk.raw"))
        try Data("not a disk, though qemu-img calls any file raw\n".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        try Data(count: 4096).write(to: URL(fileURLWithPath: dir + "/vmlinuz"))
        let r = try Spawn.run(["qemu-img", "create", "-q", "-f", "qcow2", dir + "/disk.qcow2", "64M"], descriptors: [])
        #expect(r.status == 0, "\(r.stderr)")
        let v = try Spawn.run(["qemu-img", "create", "-q", "-f", "vmdk", dir + "/disk.vmdk", "64M"], descriptors: [])
        #expect(v.status == 0, "\(v.stderr)")
        return dir
    }

    /// One guest of tenant acme with `lines` as its host keys (from line 8), on switch sw0 (whose
    /// keys are `switchKeys`, from line 4).
    static func guest(_ lines: String, switchKeys: String = "", kind: String = "vm", ips: String = "[10.20.0.31/24]") -> String {
        """
        name: ix
        switches:
          - name: sw0
        \(switchKeys)
        tenants:
          - name: acme
            hosts:
              - name: g1
                kind: \(kind)
        \(lines)
                vnics:
                  - {name: eth0, over: sw0, ips: \(ips)}
        """
    }

    func errors(_ text: String, owner: UInt32? = nil) -> String {
        do { return "valid: \(try TopologyParser.parse(text, file: "i.yaml", fileOwner: owner).name)" } catch { return "\(error)" }
    }

    @Test func badImagesAreRefusedAtTheirKey() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (image, expected) in [
            ("\(dir)/missing.qcow2", "i.yaml:10:9: error: vm host g1: image \(dir)/missing.qcow2 cannot be used: it does not exist"),
            ("\(dir)/notes.txt", "i.yaml:10:9: error: vm host g1: image \(dir)/notes.txt is not a disk image Quiver boots: qemu-img reads it as raw, but it holds no partition table or file system: it is not a disk image"),
            ("\(dir)/disk.vmdk", "i.yaml:10:9: error: vm host g1: image \(dir)/disk.vmdk is not a disk image Quiver boots: it is a vmdk image; Quiver boots qcow2 or raw"),
            (dir, "i.yaml:10:9: error: vm host g1: image \(dir) cannot be used: it is a directory"),
            ("/dev/zero", "i.yaml:10:9: error: vm host g1: image /dev/zero cannot be used: it is a character device"),
        ] {
            let e = errors(Self.guest("        image: \(image)"))
            #expect(e.contains(expected), "\(e)")
        }
        #expect(errors(Self.guest("        image: \(dir)/disk.raw")) == "valid: ix")
        #expect(errors(Self.guest("        image: \(dir)/disk.qcow2")) == "valid: ix")
        // A link is never followed, whatever it points to.
        symlink(dir + "/disk.qcow2", dir + "/link.qcow2")
        #expect(errors(Self.guest("        image: \(dir)/link.qcow2")).contains("cannot be used: it is a symbolic link"))
        // A file the topology's owner may not read is not opened for it.
        chmod(dir + "/disk.qcow2", 0o600)
        #expect(errors(Self.guest("        image: \(dir)/disk.qcow2"), owner: 65534).contains("cannot be used: uid 65534, who owns the topology file, cannot read it"))
    }

    @Test func aQcow2ThatWouldOpenAnotherFileIsRefused() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Spawn.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", dir + "/disk.qcow2", dir + "/child.qcow2"], descriptors: [])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(errors(Self.guest("        image: \(dir)/child.qcow2")).contains("it has a backing file of its own, which qemu would open by name"))
    }

    @Test func diskSizeIsASizeNoSmallerThanTheImage() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = "        image: \(dir)/disk.qcow2\n"
        #expect(errors(Self.guest(image + "        disk-size: 32M")).contains(
            "i.yaml:11:9: error: vm host g1: disk-size 33554432 bytes is smaller than the image's 67108864 bytes (qcow2) (an overlay is at least as large as its base: give at least 64M, or remove disk-size)"))
        #expect(errors(Self.guest(image + "        disk-size: 8G")) == "valid: ix")
        for bad in ["8GB", "0", "1.5G", "-1G", "0x10G", "100T", "999999999999999999T", "1K"] {
            #expect(errors(Self.guest(image + "        disk-size: \"\(bad)\"")).contains("i.yaml:11:20: error: disk-size \"\(bad)\" is not a size"), "\(bad)")
        }
        #expect(errors(Self.guest("        kernel: \(dir)/vmlinuz\n        disk-size: 8G")).contains("`disk-size` is the size of the overlay of an `image`; g1 has no image"))
    }

    @Test func uefiWithoutOVMFSaysSo() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = errors(Self.guest("        image: \(dir)/disk.qcow2\n        firmware: uefi"))
        if OVMF.installed == nil {
            #expect(e.contains("i.yaml:11:9: error: vm host g1: firmware uefi needs OVMF, and it is not installed (/usr/share/OVMF/OVMF_CODE_4M.fd is missing) (apt install ovmf, or use firmware: bios)"), "\(e)")
        } else {
            #expect(e == "valid: ix")
        }
        #expect(errors(Self.guest("        image: \(dir)/disk.qcow2\n        firmware: efi")).contains("i.yaml:11:19: error: unknown firmware \"efi\" (use bios, uefi; did you mean `uefi`?)"))
    }

    @Test func guestKeysOnANamespaceHostAreRefused() {
        for (key, value) in [("agent", "qga"), ("image", "x.qcow2"), ("cloud-init", "true"), ("firmware", "bios"), ("ssh-authorized-keys", "[]")] {
            let e = errors(Self.guest("        \(key): \(value)", kind: "netns"))
            #expect(e.contains("i.yaml:10:\(key.count + 11): error: `\(key)` belongs to `kind: vm` hosts; g1 is a netns host (add `kind: vm` or remove `\(key)`)"), "\(e)")
        }
    }

    @Test func seedKeysNeedCloudInitAndValidKeys() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = "        image: \(dir)/disk.qcow2\n"
        #expect(errors(Self.guest(image + "        cloud-init: false\n        ssh-authorized-keys: [\"ssh-ed25519 AAAA k\"]", switchKeys: "    dhcp: true")).contains(
            "i.yaml:12:30: error: `ssh-authorized-keys` reaches the guest through its cloud-init seed, and g1 has `cloud-init: false`"))
        for (key, problem) in [("ssh-ed25519 AAAA k\\nssh-rsa BBBB x", "holds a control character (a key is one line)"),
                               ("rm -rf /", "does not start with a key type"), ("ssh-rsa !!!notbase64", "has no base64 key after its type")] {
            let e = errors(Self.guest(image + "        ssh-authorized-keys: [\"\(key)\"]"))
            #expect(e.contains("i.yaml:11:31: error: ssh-authorized-keys:") && e.contains(problem), "\(e)")
        }
        #expect(errors(Self.guest(image + "        cloud-init: yes")).contains("i.yaml:11:21: error: cloud-init \"yes\" must be true or false"))
        #expect(errors(Self.guest(image + "        user-data: \(dir)/none.yaml")).contains("i.yaml:11:9: error: vm host g1: user-data \(dir)/none.yaml is not a readable file: it does not exist"))
        // Addresses only DHCP could give, and no DHCP switch: nothing would reach the guest.
        #expect(errors(Self.guest(image + "        cloud-init: false")).contains(
            "VNIC g1/eth0 has addresses, and nothing gives them to the guest: it has `cloud-init: false` and its switch sw0 has no `dhcp: true`"))
        #expect(errors(Self.guest(image + "        cloud-init: false", switchKeys: "    dhcp: true", ips: "[10.20.0.31/24, \"fd20::31/64\"]")).contains(
            "DHCP gives a guest without cloud-init one IPv4 address per NIC"))
        #expect(errors(Self.guest(image, ips: "[10.20.0.31/24, 10.21.0.31/24, \"fd20::31/64\"]")) == "valid: ix")
    }

    static func twoTenants(_ dir: String, blueNet: String = "10.41.0") -> String {
        """
        name: dx
        switches:
          - name: sw0
            dhcp: true
        tenants:
          - name: red
            hosts:
              - {name: r1, kind: vm, image: \(dir)/disk.qcow2, cloud-init: false, vnics: [{name: eth0, over: sw0, ips: [10.40.0.20/24], gateway: 10.40.0.1}]}
              - {name: r2, kind: vm, image: \(dir)/disk.qcow2, cloud-init: false, vnics: [{name: eth0, over: sw0, ips: [10.40.0.21/24]}]}
              - {name: rh, vnics: [{name: net0, over: sw0, ips: [10.40.0.254/24]}]}
          - name: blue
            hosts:
              - {name: b1, kind: vm, image: \(dir)/disk.qcow2, cloud-init: false, vnics: [{name: eth0, over: sw0, ips: [\(blueNet).20/24], gateway: \(blueNet).1}]}
        """
    }

    @Test func eachTenantOnADHCPSwitchGetsAServerWithOnlyItsLeases() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try TopologyParser.parse(Self.twoTenants(dir), file: "d.yaml")
        let d = try DesiredFabric(t)
        #expect(d.dhcpServers.map(\.namespace) == ["dx-red-dhcp-sw0", "dx-blue-dhcp-sw0"])
        let names = KernelNames("dx")
        let mac = { (tenant: String, host: String) in names.autoMAC(tenant: tenant, host: host, vnic: "eth0").description }
        let red = d.dhcpServers[0].config, blue = d.dhcpServers[1].config
        // The highest free address: .254 is rh's, so red's server takes .253.
        #expect(d.dhcpServers[0].addresses.map(\.description) == ["10.40.0.253/24"])
        #expect(d.dhcpServers[1].addresses.map(\.description) == ["10.41.0.254/24"])
        #expect(red.contains("dhcp-host=\(mac("red", "r1")),set:lease0,10.40.0.20,infinite\ndhcp-option=tag:lease0,option:router,10.40.0.1\n"))
        // No gateway in the file: no router option (dnsmasq would offer itself).
        #expect(red.contains("dhcp-host=\(mac("red", "r2")),set:lease1,10.40.0.21,infinite\ndhcp-option=tag:lease1,option:router\n"))
        #expect(!red.contains(mac("blue", "b1")) && !blue.contains(mac("red", "r1")) && !blue.contains(mac("red", "r2")))
        for c in [red, blue] {
            for line in ["port=0", "dhcp-ignore=tag:!known", "leasefile-ro", "interface=eth0", "bind-interfaces", "user=nobody"] {
                #expect(c.split(separator: "\n").contains(Substring(line)), "\(line)")
            }
        }
        #expect(blue.contains("dhcp-range=set:net0,10.41.0.0,static,255.255.255.0,infinite"))
        // Each server is a host of its tenant: its own namespace, a protected VNIC on the switch.
        let port = try #require(d.vnics.first { $0.namespace == "dx-red-dhcp-sw0" })
        #expect(port.tenant == "red" && port.bridge.rawValue == "dx-sw0" && port.hostDevice.rawValue.hasPrefix("dx.d"))
        #expect(port.protection == [.macNospoof, .ipNospoof, .restricted])
        #expect(port.allowed.map(\.description) == ["10.40.0.253/32"])
        #expect(d.namespaces.contains { $0.name.rawValue == "dx-blue-dhcp-sw0" && $0.tag == "quiver:dx/host/blue/dhcp-sw0" })
    }

    @Test func tenantsWithOverlappingSubnetsOnADHCPSwitchAreRefused() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let e = errors(Self.twoTenants(dir, blueNet: "10.40.0").replacingOccurrences(of: "10.40.0.20/24], gateway: 10.40.0.1}]}\n      - {name: b1", with: "x"))
        #expect(e.contains("d.yaml:4:11: error: switch sw0 has `dhcp: true`, and tenants red (10.40.0.0/24) and blue (10.40.0.0/24) have overlapping subnets on it (give each tenant on a dhcp switch its own subnet)")
                || e.contains("i.yaml:4:11: error: switch sw0 has `dhcp: true`, and tenants red (10.40.0.0/24) and blue (10.40.0.0/24) have overlapping subnets on it"), "\(e)")
        #expect(errors("name: q\nswitches:\n  - {name: sw0, dhcp: true}\ntenants:\n  - name: a\n    hosts:\n      - {name: h, vnics: [{name: n, over: sw0, ips: [10.1.0.1/24]}]}\n")
            .contains("i.yaml:3:23: error: switch sw0 has `dhcp: true` and no guest with an IPv4 address on it"))
        #expect(errors("name: q\nswitches:\n  - {name: sw0, dhcp: on}\ntenants:\n  - name: a\n    hosts:\n      - {name: h, vnics: [{name: n, over: sw0}]}\n")
            .contains("i.yaml:3:23: error: dhcp \"on\" must be true or false"))
    }

    @Test func configuredNeedsAGuestWithQGA() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hosts = Self.guest("        kernel: \(dir)/vmlinuz") + "\n      - {name: web, vnics: [{name: net0, over: sw0, ips: [10.20.0.11/24]}]}\nexpect:\n"
        let e = errors(hosts + "  - configured: {host: acme/web}\n  - configured: {host: acme/g1}\n")
        #expect(e.contains("i.yaml:15:5: error: `configured` looks inside acme/web through qemu-guest-agent, and acme/web is a netns host"), "\(e)")
        #expect(e.contains("i.yaml:16:5: error: `configured` looks inside acme/g1 through qemu-guest-agent, and acme/g1 has `agent: quiver`"), "\(e)")
        #expect(errors(hosts + "  - configured: {host: acme/g1/eth0}\n").contains("i.yaml:15:24: error: `configured` takes a host (tenant/host), not a VNIC"))
    }
}
