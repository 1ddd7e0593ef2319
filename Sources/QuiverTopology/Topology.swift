import QuiverValues

/// Where something was written in a topology file, for messages: `file:line:column`.
public struct SourceLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A validated topology: what `quiver apply` makes the host match.
public struct Topology: Sendable, Equatable {
    public var name: String
    public var switches: [Switch]
    public var tenants: [Tenant]
    public var expectations: [Expectation]
    public var file: String
    /// The uid that owns the file it was read from (nil: parsed from text). When it is not root,
    /// the guest files the topology names must be readable (a disk: writable) by that uid.
    public var fileOwner: UInt32? = nil
    /// `nodes:`: the hosts (machines) a fabric spans; empty: everything is local, as before.
    public var nodes: [Node] = []
    /// The node this topology was placed on (``placed(on:)``): only its hosts remain in
    /// `tenants`, and `segments` say what the other nodes hold. nil: not placed (every host).
    public var node: String? = nil
    /// With `node`: the VXLAN segments of switches that span nodes, as seen from `node`.
    public var segments: [Segment] = []
    /// With `node`: the names of the hosts the file places on other nodes.
    public var hostsElsewhere: Set<String> = []
    /// FNV-1a 64 of the text it was parsed from, in hex: tells whether two applies were of the
    /// same file text (the daemon's check for a hand-made apply). Change detection, not ownership.
    public var sourceDigest: String = ""

    /// A machine of a multi-node fabric and the address its VXLAN packets use.
    public struct Node: Sendable, Equatable {
        public var name: String
        public var underlay: IPAddress
        public var location: SourceLocation
        public init(name: String, underlay: IPAddress, location: SourceLocation) {
            self.name = name
            self.underlay = underlay
            self.location = location
        }
    }

    public struct Switch: Sendable, Equatable {
        public var name: String
        public var mtu: UInt32?
        /// `dhcp: true`: a DHCPv4 server per tenant with the file's addresses as static leases.
        public var dhcp: Bool = false
        public var location: SourceLocation
        /// Where `dhcp` is written (its errors point there).
        public var dhcpLocation: SourceLocation? = nil
        /// `vni:`: the first VNI of the switch's tenant segments (nil: derived from the names).
        public var vni: UInt32? = nil
        public var vniLocation: SourceLocation? = nil
    }

    public struct Tenant: Sendable, Equatable {
        public var name: String
        public var maxbw: Bitrate?
        public var hosts: [Host]
        public var location: SourceLocation
    }

    public enum HostKind: String, Sendable, Equatable, CaseIterable {
        case netns
        case vm
    }

    public struct Host: Sendable, Equatable {
        public var name: String
        public var kind: HostKind
        public var vnics: [VNIC]
        /// `kind: vm` only.
        public var vm: Machine?
        public var location: SourceLocation
        /// `node:` — which node of `nodes:` the host runs on.
        public var node: String? = nil
        public var nodeLocation: SourceLocation? = nil
    }

    /// What a `kind: vm` host boots. Paths are resolved against the topology file's directory.
    public struct Machine: Sendable, Equatable {
        /// Direct kernel boot; nil: the firmware boots `image`.
        public var kernel: String?
        public var initrd: String?
        public var cmdline: String
        public var disk: String?
        public var memoryMiB: Int
        public var cpus: Int
        /// `auto`, `kvm` or `tcg`.
        public var accel: String
        /// Percent of one CPU (`cpu-cap`); nil: no cap.
        public var cpuCap: Int? = nil
        /// A qcow2 or raw base image the guest boots an overlay of.
        public var image: String? = nil
        /// The overlay's virtual size in bytes; nil: the image's.
        public var diskSize: UInt64? = nil
        /// `bios` or `uefi`; nil: direct kernel boot when `kernel` is set, else `bios`.
        public var firmware: String? = nil
        /// Whether the guest gets a NoCloud seed (default: with `image`).
        public var cloudInit: Bool = false
        public var userData: String? = nil
        public var sshAuthorizedKeys: [String] = []
        /// `qga`, `quiver` or `none`.
        public var agent: String = "quiver"
        /// What `quiver daemon` does when the guest's qemu is gone.
        public var restart: RestartPolicy = .onFailure
        /// Where each key is written, for errors that point at it.
        public var keyLocations: [String: SourceLocation] = [:]

        public init(kernel: String?, initrd: String?, cmdline: String, disk: String?, memoryMiB: Int, cpus: Int, accel: String, cpuCap: Int? = nil) {
            self.kernel = kernel
            self.initrd = initrd
            self.cmdline = cmdline
            self.disk = disk
            self.memoryMiB = memoryMiB
            self.cpus = cpus
            self.accel = accel
            self.cpuCap = cpuCap
        }
    }

    /// A guest's `restart:`: what the daemon does when its qemu is gone without a `quiver vm stop`
    /// (like Docker's and systemd's restart policies; libvirt's on_crash/on_poweroff).
    public enum RestartPolicy: String, Sendable, Equatable, Codable, CaseIterable {
        /// Restarted even after the guest powered itself off.
        case always
        /// Restarted when qemu died (killed, crashed), not when the guest powered itself off.
        case onFailure = "on-failure"
        case never
    }

    public enum MACSetting: Sendable, Equatable {
        /// Derived from the topology, tenant, host and VNIC names: stable across applies.
        case auto
        /// Random once, then kept (read back from the kernel on re-apply).
        case random
        case fixed(MACAddress)
    }

    public enum Protection: String, Sendable, Equatable, CaseIterable, Codable {
        case macNospoof = "mac-nospoof"
        case ipNospoof = "ip-nospoof"
        case restricted
        case dhcpNospoof = "dhcp-nospoof"
    }

    public struct VNIC: Sendable, Equatable {
        public var name: String
        public var over: String
        public var mac: MACSetting
        public var ips: [IPPrefix]
        public var gateway: IPAddress?
        public var mtu: UInt32?
        public var maxbw: Bitrate?
        public var floor: Bitrate?
        /// Overrides of the computed bucket and queue sizes, bytes.
        public var burst: UInt32?
        public var queue: UInt32?
        public var protection: [Protection]
        public var allowedIPs: [IPPrefix]
        public var flows: [FlowCap]
        /// VM hosts: virtio queues (tap queues, one vhost-net fd each where available).
        public var queues: Int = 1
        /// VM hosts: `tap` (a port of the switch `over`) or `macvtap` (a macvtap in bridge mode
        /// over the switch's bridge device, the `dladm create-vnic -l etherstub` analogue).
        public var mode: String = "tap"
        /// Netns hosts: whether the endpoint has an IPv6 link-local address. `auto` (nil): when
        /// `ips` has an IPv6 address. Without one the endpoint sends no IPv6 start-up traffic
        /// (duplicate address detection, MLD reports, router solicitations).
        public var linkLocal: Bool?
        public var location: SourceLocation

        /// Whether the endpoint gets an IPv6 link-local address.
        public var wantsLinkLocal: Bool { linkLocal ?? ips.contains { !$0.address.isV4 } }
    }

    /// An endpoint in an expectation: `tenant/host` (its first VNIC) or `tenant/host/vnic`.
    public struct EndpointRef: Sendable, Equatable, CustomStringConvertible {
        public var tenant: String
        public var host: String
        public var vnic: String?
        public init(tenant: String, host: String, vnic: String? = nil) {
            self.tenant = tenant
            self.host = host
            self.vnic = vnic
        }
        public var description: String { "\(tenant)/\(host)" + (vnic.map { "/\($0)" } ?? "") }
    }

    /// How `reach` / `no-reach` probe.
    public enum ReachProbe: String, Sendable, Equatable, CaseIterable {
        /// ICMP echo (IPv4).
        case icmp
        /// TCP connect to `port` (Quiver listens there for the probe if nothing does).
        case tcp
        /// ARP request for the target's address, answered by the target.
        case arp
    }

    /// What `spoof` forges.
    public enum SpoofKind: String, Sendable, Equatable, CaseIterable {
        /// A foreign source MAC → counted as `mac`.
        case mac
        /// A foreign IPv4 source address → `ip`.
        case ip
        /// An ARP request with a foreign sender address → `ip`.
        case arp
        /// A non-IP ethertype (0x88b5) → `restricted`.
        case ethertype

        /// The protection counter that must grow.
        public var counter: String {
            switch self { case .mac: return "mac"; case .ip, .arp: return "ip"; case .ethertype: return "restricted" }
        }
    }

    /// An `expect:` entry for `quiver verify`.
    public enum Expectation: Sendable, Equatable {
        case reach(from: EndpointRef, to: EndpointRef, probes: [ReachProbe], port: UInt16, location: SourceLocation)
        case noReach(from: EndpointRef, to: EndpointRef, probes: [ReachProbe], port: UInt16, location: SourceLocation)
        /// TCP from `from` to `to` for `seconds`: the rate on the wire must be `rate` ± `tolerance` (a fraction).
        case bandwidth(from: EndpointRef, to: EndpointRef, rate: Bitrate, tolerance: Double, seconds: Double, location: SourceLocation)
        /// `count` forged frames of each kind from `from`: none delivered, the counter grew by `count`.
        case spoof(from: EndpointRef, kinds: [SpoofKind], count: Int, location: SourceLocation)
        /// Inside guest `host` (through qemu-guest-agent): each NIC has exactly the file's MAC,
        /// addresses and default route.
        case configured(host: EndpointRef, location: SourceLocation)

        public var location: SourceLocation {
            switch self {
            case .reach(_, _, _, _, let l), .noReach(_, _, _, _, let l), .bandwidth(_, _, _, _, _, let l), .spoof(_, _, _, let l),
                 .configured(_, let l): return l
            }
        }

        public var endpoints: [EndpointRef] {
            switch self {
            case .reach(let f, let t, _, _, _), .noReach(let f, let t, _, _, _), .bandwidth(let f, let t, _, _, _, _): return [f, t]
            case .spoof(let f, _, _, _), .configured(let f, _): return [f]
            }
        }
    }
}

extension Topology {
    /// The first IPv4 address of the VNIC whose host-side device is `hostDevice`.
    public func address(ofHostDevice hostDevice: String) -> IPAddress? {
        let n = KernelNames(name)
        for tenant in tenants {
            for host in tenant.hosts {
                for v in host.vnics where n.hostDevice(host: host.name, vnic: v.name) == hostDevice {
                    return v.ips.first { $0.address.isV4 }?.address
                }
            }
        }
        return nil
    }
}

/// An error in a topology file, with where it is and what to do.
public struct TopologyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var location: SourceLocation?
    public var message: String
    public var hint: String?

    public init(_ location: SourceLocation?, _ message: String, hint: String? = nil) {
        self.location = location
        self.message = message
        self.hint = hint
    }

    public var description: String {
        (location.map { "\($0): " } ?? "") + "error: " + message + (hint.map { " (\($0))" } ?? "")
    }
}

/// Every error found in a file (validation reports all at once), up to ``Limits/errors``; `more`
/// counts those left out.
public struct TopologyErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [TopologyError]
    public var more = 0

    public init(errors: [TopologyError], more: Int = 0) {
        self.errors = errors
        self.more = more
    }

    /// The first ``Limits/errors`` of `all`.
    public init(capping all: [TopologyError]) {
        errors = Array(all.prefix(Limits.errors))
        more = all.count - errors.count
    }

    public var description: String {
        errors.map(\.description).joined(separator: "\n") + (more > 0 ? "\n… and \(more) more errors" : "")
    }
}
