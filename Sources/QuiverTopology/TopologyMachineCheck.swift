import Foundation
import QuiverValues

/// Validation of what `kind: vm` hosts boot and of `dhcp` switches: each error at the key it is
/// about, before anything changes on the host.
extension TopologyValidator.Check {
    /// Where `key` of `vm` is written, or the host.
    func at(_ vm: Topology.Machine, _ key: String, _ host: Topology.Host) -> SourceLocation { vm.keyLocations[key] ?? host.location }

    /// A `kind: vm` host: its guest files (readable, a disk writable, by the file's owner), its
    /// base image (a qcow2 or raw disk, by `qemu-img info`), the overlay's size, the firmware,
    /// its command line, and what its NICs may be.
    mutating func vmHost(_ host: Topology.Host, _ vm: Topology.Machine) {
        let owner = t.fileOwner.flatMap { $0 == 0 ? nil : $0 }
        for (what, path, access) in [("kernel", vm.kernel, GuestFile.Access.read), ("initrd", vm.initrd, .read), ("disk", vm.disk, .readWrite),
                                     ("user-data", vm.userData, .read)] {
            guard let path, let problem = GuestFile.problem(path, access, owner: owner) else { continue }
            fail(at(vm, what, host), "vm host \(host.name): \(what) \(path) is not a \(access == .read ? "readable file" : "file the guest can write"): \(problem)",
                 what == "disk" ? "a disk is a regular file the guest may write" : what == "user-data" ? "name a cloud-config file" : "scripts/build-test-guest.sh builds a test kernel and initrd")
        }
        if let u = vm.userData, let size = (try? FileManager.default.attributesOfItem(atPath: u))?[.size] as? Int, size > 1 << 20 {
            fail(at(vm, "user-data", host), "vm host \(host.name): user-data \(u) is \(size) bytes; at most 1 MiB", "cloud-init reads user-data whole")
        }
        image(host, vm, owner: owner)
        if vm.firmware == "uefi", OVMF.installed == nil {
            fail(at(vm, "firmware", host), "vm host \(host.name): firmware uefi needs OVMF, and it is not installed (\(OVMF.codeCandidates[0]) is missing)",
                 "apt install ovmf, or use firmware: bios")
        }
        if vm.kernel == nil, vm.initrd != nil || !vm.cmdline.isEmpty {
            let key = vm.initrd != nil ? "initrd" : "cmdline"
            fail(at(vm, key, host), "vm host \(host.name): `\(key)` is for direct kernel boot, and it has no `kernel`", "add `kernel:` or remove `\(key)`")
        }
        if let bad = vm.cmdline.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            fail(at(vm, "cmdline", host), "vm host \(host.name): cmdline holds a control character (U+\(String(format: "%04X", bad.value)))",
                 "the kernel command line is one line of words")
        }
        if vm.cmdline.utf8.count > Limits.cmdlineBytes {
            fail(at(vm, "cmdline", host), "vm host \(host.name): cmdline is \(vm.cmdline.utf8.count) bytes; at most \(Limits.cmdlineBytes)",
                 "Linux keeps 2048 bytes of command line and Quiver adds its own words")
        }
        for v in host.vnics where v.mac == .random {
            fail(v.location, "VNIC \(host.name)/\(v.name): mac random is for netns hosts", "VM NICs take auto or a fixed MAC")
        }
        if host.vnics.count > 8 { fail(host.location, "vm host \(host.name) has \(host.vnics.count) NICs; at most 8") }
        for v in host.vnics where v.linkLocal != nil {
            fail(v.location, "VNIC \(host.name)/\(v.name): link-local is for kind: netns hosts",
                 "a guest configures its own IPv6; the fabric side of a guest's NIC never has a link-local address")
        }
        nicAddresses(host, vm)
    }

    /// How each NIC's addresses reach the guest: the test guest's init takes one IPv4 address
    /// per NIC; a cloud-init seed takes them all; without either, only a `dhcp` switch gives
    /// one — an IPv4 address, exactly.
    mutating func nicAddresses(_ host: Topology.Host, _ vm: Topology.Machine) {
        for v in host.vnics where !v.ips.isEmpty {
            let dhcp = t.switches.first { $0.name == v.over }?.dhcp == true
            if vm.cloudInit { continue }
            if vm.agent == "quiver" && vm.kernel != nil {
                if v.ips.count > 1 || v.ips.contains(where: { !$0.address.isV4 }) {
                    fail(v.location, "VNIC \(host.name)/\(v.name): a NIC of the test guest takes one IPv4 address",
                         "the test guest's init sets one address per NIC from the kernel command line; a cloud-init guest takes more")
                }
                continue
            }
            if !dhcp {
                fail(v.location, "VNIC \(host.name)/\(v.name) has addresses, and nothing gives them to the guest: it has `cloud-init: false` and its switch \(v.over) has no `dhcp: true`",
                     "set `cloud-init: true`, or `dhcp: true` on switch \(v.over)")
            } else if v.ips.count > 1 || v.ips.contains(where: { !$0.address.isV4 }) {
                fail(v.location, "VNIC \(host.name)/\(v.name): DHCP gives a guest without cloud-init one IPv4 address per NIC, and this one has \(v.ips.map(\.description).joined(separator: ", "))",
                     "keep one IPv4 address, or set `cloud-init: true`")
            }
        }
    }

    /// The base image: a qcow2 or raw disk image (``DiskImage``), readable by the file's owner,
    /// and no larger than `disk-size`.
    mutating func image(_ host: Topology.Host, _ vm: Topology.Machine, owner: UInt32?) {
        guard let path = vm.image else { return }
        switch DiskImage.examine(path, owner: owner) {
        case .failure(let e):
            fail(at(vm, "image", host), "vm host \(host.name): image \(path) " + (e.opening ? "cannot be used: " : "is not a disk image Quiver boots: ") + e.description,
                 "name a qcow2 or raw disk image (scripts/build-debian-guest.sh builds one)")
        case .success(let info):
            if let size = vm.diskSize, size < info.virtualSize {
                fail(at(vm, "disk-size", host), "vm host \(host.name): disk-size \(size) bytes is smaller than the image's \(info.virtualSize) bytes (\(info.format))",
                     "an overlay is at least as large as its base: give at least \(Self.sizeText(info.virtualSize)), or remove disk-size")
            }
        }
    }

    /// `8G` for a whole number of GiB, else MiB rounded up.
    static func sizeText(_ bytes: UInt64) -> String {
        bytes % (1 << 30) == 0 ? "\(bytes >> 30)G" : "\((bytes + (1 << 20) - 1) >> 20)M"
    }

    /// A `dhcp` switch: each of its tenants gets a server that answers only that tenant's MACs;
    /// tenants whose subnets overlap there would be handed addresses from one range.
    mutating func dhcpSwitches() {
        for s in t.switches where s.dhcp {
            var subnets: [(tenant: String, prefix: IPPrefix)] = []
            for tenant in t.tenants {
                for host in tenant.hosts { for v in host.vnics where v.over == s.name { for p in v.ips where p.address.isV4 { subnets.append((tenant.name, p.network)) } } }
            }
            var reported = Set<String>()
            for (i, a) in subnets.enumerated() {
                for b in subnets[(i + 1)...] where a.tenant != b.tenant && (a.prefix.contains(b.prefix.address) || b.prefix.contains(a.prefix.address)) {
                    let pair = [a.tenant, b.tenant].sorted().joined(separator: "/")
                    guard reported.insert(pair).inserted else { continue }
                    fail(s.dhcpLocation ?? s.location, "switch \(s.name) has `dhcp: true`, and tenants \(a.tenant) (\(a.prefix)) and \(b.tenant) (\(b.prefix)) have overlapping subnets on it",
                         "give each tenant on a dhcp switch its own subnet")
                }
            }
            for plan in DHCPServerPlan.all(t) where plan.switchName == s.name {
                kernelName(plan.hostDevice(names), "the DHCP server of tenant \(plan.tenant) on switch \(s.name)", s.dhcpLocation ?? s.location)
                for net in plan.full {
                    fail(s.dhcpLocation ?? s.location, "switch \(s.name): the DHCP server of tenant \(plan.tenant) needs an address of its own in \(net), and the topology uses every one it could take",
                         "the server takes the highest free address of each subnet its guests are in; leave one free, or widen the subnet")
                }
            }
            let hasDHCPGuest = t.tenants.contains { $0.hosts.contains { h in h.vm != nil && h.vnics.contains { $0.over == s.name && $0.ips.contains { $0.address.isV4 } } } }
            if !hasDHCPGuest {
                fail(s.dhcpLocation ?? s.location, "switch \(s.name) has `dhcp: true` and no guest with an IPv4 address on it", "remove `dhcp`, or plug a vm host's VNIC into it")
            }
        }
    }
}

