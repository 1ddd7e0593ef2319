import QuiverKernel

/// How a guest runs: KVM, TCG, or KVM when it really works and TCG otherwise.
public enum Accelerator: String, Sendable, Codable, CaseIterable {
    case auto, kvm, tcg
}

/// Where a NIC's packets are moved: the kernel's vhost-net, or qemu's own virtio-net code.
public enum NetBackend: String, Sendable, Codable {
    case vhost
    case userspace
}

/// One guest NIC: a tap (already on its switch) or a macvtap whose queues Quiver opens and hands
/// to qemu.
public struct VMNIC: Sendable, Codable, Equatable {
    /// The device's name (the tap on the switch, or the macvtap).
    public var tap: String
    /// "macvtap" for a macvtap; nil for a tap (records written before macvtaps read the same).
    public var device: String?
    public var mac: MACAddress
    public var queues: Int
    /// Inside the guest: `eth0`, `eth1`, … and what the init sets up.
    public var guestDevice: String
    public var address: IPPrefix?
    public var gateway: IPAddress?
    /// Every address of the NIC, IPv4 and IPv6 (what a cloud-init seed gives); nil: `address` only.
    public var addresses: [IPPrefix]?

    /// Every address the guest should have on this NIC.
    public var allAddresses: [IPPrefix] { addresses ?? (address.map { [$0] } ?? []) }

    public init(tap: String, mac: MACAddress, queues: Int = 1, guestDevice: String, address: IPPrefix? = nil, gateway: IPAddress? = nil,
                macvtap: Bool = false, addresses: [IPPrefix]? = nil) {
        self.addresses = addresses
        self.tap = tap
        device = macvtap ? "macvtap" : nil
        self.mac = mac
        self.queues = queues
        self.guestDevice = guestDevice
        self.address = address
        self.gateway = gateway
    }
}

/// What boots a guest without a kernel of its own.
public enum Firmware: String, Sendable, Codable, CaseIterable {
    /// SeaBIOS, qemu's default.
    case bios
    /// OVMF, from Debian's `ovmf` package.
    case uefi
}

/// What Quiver talks to inside a guest.
public enum AgentKind: String, Sendable, Codable, CaseIterable {
    /// qemu-guest-agent on the virtio-serial port `org.qemu.guest_agent.0`.
    case qga
    /// The test guest's own agent on its second serial port (guest/init).
    case quiver
    case none
}

/// A guest's disk image: a base that is never written, and the overlay over it the guest boots.
public struct ImageSpec: Sendable, Codable, Equatable {
    /// The base image (qcow2 or raw; its format is read from it, never from its name).
    public var path: String
    /// The overlay's virtual size in bytes; nil: the base's.
    public var size: UInt64?

    public init(path: String, size: UInt64? = nil) {
        self.path = path
        self.size = size
    }
}

/// What a guest's NoCloud seed says beyond its NICs.
public struct SeedSpec: Sendable, Codable, Equatable {
    /// `local-hostname`: the host's name in the file.
    public var hostname: String
    /// A cloud-config file passed on as is; nil: none.
    public var userData: String?
    public var sshAuthorizedKeys: [String]

    public init(hostname: String, userData: String? = nil, sshAuthorizedKeys: [String] = []) {
        self.hostname = hostname
        self.userData = userData
        self.sshAuthorizedKeys = sshAuthorizedKeys
    }
}

/// Everything needed to start one guest.
public struct VMSpec: Sendable, Codable, Equatable {
    public var name: String
    /// Direct kernel boot; nil: the firmware boots `image`.
    public var kernel: String?
    public var initrd: String?
    /// Extra kernel command line; Quiver appends the console and each NIC's `quiver.net=`.
    public var cmdline: String
    public var disk: String?
    public var memoryMiB: Int
    public var cpus: Int
    public var accel: Accelerator
    public var nics: [VMNIC]
    /// The uid whose permissions bound `kernel`, `initrd` and `disk` (the topology file's owner
    /// when not root; see ``GuestFile``); nil: none.
    public var filesOwner: UInt32?
    /// Percent of one CPU the guest's qemu may use (`cpu-cap`, as SmartOS `cpu_cap`); nil: no cap.
    public var cpuCap: Int?
    /// The base image the guest boots an overlay of; nil: none.
    public var image: ImageSpec?
    /// nil: SeaBIOS.
    public var firmware: Firmware?
    /// A NoCloud seed; nil: none.
    public var seed: SeedSpec?
    /// nil: Quiver's own (records written before images).
    public var agent: AgentKind?

    public var agentKind: AgentKind { agent ?? .quiver }

    public init(name: String, kernel: String?, initrd: String? = nil, cmdline: String = "", disk: String? = nil,
                memoryMiB: Int = 256, cpus: Int = 1, accel: Accelerator = .auto, nics: [VMNIC], filesOwner: UInt32? = nil,
                cpuCap: Int? = nil) {
        self.filesOwner = filesOwner
        self.cpuCap = cpuCap
        self.name = name
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.disk = disk
        self.memoryMiB = memoryMiB
        self.cpus = cpus
        self.accel = accel
        self.nics = nics
    }

    /// The kernel command line qemu passes: console on the first serial port, then one
    /// `quiver.net=DEV,ADDRESS[,GATEWAY]` per NIC for the guest's init, then the user's words.
    public var fullCommandLine: String {
        var words = ["console=ttyS0", "panic=-1", "quiver.name=\(name)"]
        for n in nics {
            words.append("quiver.net=" + [n.guestDevice, n.address?.description ?? "", n.gateway?.description ?? ""]
                .joined(separator: ",").replacingOccurrences(of: ",,", with: ",").trimmingTrailingCommas())
        }
        if !cmdline.isEmpty { words.append(cmdline) }
        return words.joined(separator: " ")
    }
}

extension String {
    func trimmingTrailingCommas() -> String {
        var s = self
        while s.hasSuffix(",") { s.removeLast() }
        return s
    }
}
