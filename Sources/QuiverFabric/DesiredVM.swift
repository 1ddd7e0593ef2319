import QuiverKernel
import QuiverTopology
import QuiverVM

extension DesiredFabric {
    /// A `kind: vm` host: its NICs' devices, and the spec its qemu starts from.
    static func vm(_ m: Topology.Machine, host: Topology.Host, tenant: String, in t: Topology) throws(InvalidValue) -> VM {
        let n = KernelNames(t)
        func lower(_ v: Topology.VNIC) throws(InvalidValue) -> (name: InterfaceName, isSwitch: Bool) {
            t.switches.contains { $0.name == v.over } ? (try InterfaceName(validating: n.bridge(v.over)), true) : (try InterfaceName(validating: v.over), false)
        }
        var nics: [VMNIC] = []
        var taps: [NICDevice] = []
        for (i, v) in host.vnics.enumerated() {
            let mac: MACAddress
            if case .fixed(let f) = v.mac { mac = f } else { mac = n.autoMAC(tenant: tenant, host: host.name, vnic: v.name) }
            let device = try InterfaceName(validating: n.hostDevice(host: host.name, vnic: v.name))
            // A seed names each NIC as the file does; the test guest and a guest
            // without cloud-init name them eth0, eth1, … in PCI order.
            nics.append(VMNIC(tap: device.rawValue, mac: mac, queues: v.queues, guestDevice: m.cloudInit ? v.name : "eth\(i)",
                              address: v.ips.first { $0.address.isV4 }, gateway: v.gateway, macvtap: v.mode == "macvtap",
                              addresses: m.cloudInit ? v.ips : nil))
            let (bridge, overSwitch) = try lower(v)
            taps.append(NICDevice(name: device, bridge: bridge,
                                  tag: n.vnicTag(tenant: tenant, host: host.name, vnic: v.name),
                                  macvtap: v.mode == "macvtap", overSwitch: overSwitch))
        }
        var spec = VMSpec(name: GuestDirectory.guestName(topology: try TopologyName(validating: t.name), host: try ObjectName(validating: host.name)), kernel: m.kernel, initrd: m.initrd, cmdline: m.cmdline, disk: m.disk,
                          memoryMiB: m.memoryMiB, cpus: m.cpus, accel: Accelerator(rawValue: m.accel) ?? .auto, nics: nics,
                          filesOwner: t.fileOwner.flatMap { $0 == 0 ? nil : $0 }, cpuCap: m.cpuCap)
        spec.image = m.image.map { ImageSpec(path: $0, size: m.diskSize) }
        spec.firmware = m.firmware.flatMap(Firmware.init(rawValue:))
        spec.agent = AgentKind(rawValue: m.agent)
        if m.cloudInit { spec.seed = SeedSpec(hostname: host.name, userData: m.userData, sshAuthorizedKeys: m.sshAuthorizedKeys) }
        return VM(tenant: tenant, host: host.name, directory: GuestDirectory.path(topology: try TopologyName(validating: t.name), host: try ObjectName(validating: host.name)),
                      spec: spec, taps: taps)
    }
}
