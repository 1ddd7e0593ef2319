/// The qemu command line for a spec — pure, so it is unit-tested without starting anything.
///
/// NIC queues arrive as descriptor numbers already open in the child (`fds=`/`vhostfds=`, as
/// libvirt passes them): qemu never opens a network device and needs no privilege for it.
public enum QemuCommand {
    public struct Files: Sendable, Equatable {
        public var qmp: String
        public var agent: String
        public var console: String
        public var pidfile: String

        public init(directory: String) {
            qmp = directory + "/qmp.sock"
            agent = directory + "/agent.sock"
            console = directory + "/console.log"
            pidfile = directory + "/qemu.pid"
        }
    }

    /// - Parameters:
    ///   - tapFDs: per NIC, the child's descriptor number of each queue.
    ///   - vhostFDs: per NIC, one vhost-net descriptor per queue; nil: userspace virtio-net.
    ///   - accel: the accelerator actually chosen (`auto` already resolved).
    public static func argv(_ spec: VMSpec, files: Files, tapFDs: [[Int32]], vhostFDs: [[Int32]]?,
                            accel: Accelerator, binary: String = "qemu-system-x86_64") -> [String] {
        precondition(accel != .auto, "resolve auto before building the command line")
        var a = [binary, "-name", "guest=\(spec.name)", "-nodefaults", "-no-user-config", "-nographic", "-display", "none",
                 "-machine", "q35", "-accel", accel.rawValue, "-cpu", accel == .kvm ? "host" : "max",
                 "-m", String(spec.memoryMiB), "-smp", String(spec.cpus),
                 "-kernel", spec.kernel]
        if let i = spec.initrd { a += ["-initrd", i] }
        a += ["-append", spec.fullCommandLine]
        if let d = spec.disk { a += ["-drive", "file=\(d),if=virtio,format=raw"] }
        for (i, nic) in spec.nics.enumerated() {
            let fds = tapFDs[i].map(String.init).joined(separator: ":")
            var netdev = "tap,id=net\(i)," + (tapFDs[i].count == 1 ? "fd=\(fds)" : "fds=\(fds)")
            if let v = vhostFDs?[i] {
                netdev += ",vhost=on," + (v.count == 1 ? "vhostfd=\(v[0])" : "vhostfds=" + v.map(String.init).joined(separator: ":"))
            } else {
                netdev += ",vhost=off"
            }
            var device = "virtio-net-pci,netdev=net\(i),mac=\(nic.mac)"
            if nic.queues > 1 { device += ",mq=on,vectors=\(2 * nic.queues + 2)" }
            a += ["-netdev", netdev, "-device", device]
        }
        a += ["-chardev", "file,id=console,path=\(files.console)", "-serial", "chardev:console",
              "-chardev", "socket,id=agent,path=\(files.agent),server=on,wait=off", "-serial", "chardev:agent",
              "-qmp", "unix:\(files.qmp),server=on,wait=off",
              "-pidfile", files.pidfile, "-daemonize"]
        return a
    }
}
