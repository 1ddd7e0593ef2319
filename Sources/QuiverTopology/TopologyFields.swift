/// Every key a topology file may hold, declared once: the parser's unknown-key check, the field
/// tables of `docs/TOPOLOGY.md` (``FieldSection/markdown``, kept up to date by a test) and
/// `quiver schema` (``TopologySchema``) are all made from these.
public struct Field: Sendable {
    public var key: String
    public var type: FieldType
    public var presence: Presence
    /// One line for the docs (Markdown).
    public var meaning: String

    public init(_ key: String, _ type: FieldType, _ presence: Presence = .optional, _ meaning: String) {
        self.key = key
        self.type = type
        self.presence = presence
        self.meaning = meaning
    }
}

/// What a key's value is. Every value in a file is read from its text, so a number may also be
/// written as a string (`mtu: "1500"`).
public indirect enum FieldType: Sendable {
    /// Letters, digits and `_`, at most `maxBytes`.
    case name(maxBytes: Int)
    /// A Linux interface name (a host link under a macvtap): 1–15 bytes, no `/`, `:`, `%` or space.
    case interfaceName
    case text
    case integer(ClosedRange<Int>)
    /// A decimal number (seconds).
    case decimal(ClosedRange<Double>)
    /// A bandwidth: `K`/`M`/`G` bits per second, a bare number is Mbit/s, `0` blocks.
    case rate
    /// Bytes, at least one frame.
    case bytes
    case port
    case choice([String])
    /// `auto`, `random` or a unicast MAC.
    case mac
    case address
    /// An address with a prefix length (or a bare address).
    case prefix
    /// A path, relative to the file.
    case path
    /// `tenant/host` or `tenant/host/vnic`.
    case endpoint
    /// A percentage like `10%` (or a fraction).
    case percentage
    /// `auto`, `on` or `off` (JSON: `true`, `false`).
    case autoOnOff
    /// `true` or `false`.
    case boolean
    /// A size in bytes: a number with `K`, `M`, `G` or `T` (powers of 1024), a bare number is bytes.
    case size
    case list(FieldType)
    /// A list of mappings of the named section.
    case sections(String)
    /// One value of `type`, or a list of them.
    case oneOrList(FieldType)
}

/// When a key is required or allowed.
public enum Presence: Sendable, Equatable {
    case required
    case optional
    /// A host key for `kind: vm` hosts only.
    case vmHost
    /// A VNIC key for VNICs of `kind: vm` hosts only.
    case vmNIC
    /// A VNIC key for VNICs of namespace hosts only.
    case netnsNIC

    var docs: String {
        switch self {
        case .required: return "yes"
        case .optional: return "no"
        case .vmHost, .vmNIC: return "`kind: vm`"
        case .netnsNIC: return "`kind: netns`"
        }
    }
}

/// The keys of one kind of mapping in a file.
public struct FieldSection: Sendable {
    /// How schemas and code refer to it: `topology`, `switch`, `vnic`, `reach`, …
    public var id: String
    /// Its heading in the docs: "Top level", "`vnics[]`", …
    public var title: String
    /// How an error names it: "the topology", "vnic", …
    public var what: String
    public var fields: [Field]

    public var keys: [String] { fields.map(\.key) }
    public func field(_ key: String) -> Field? { fields.first { $0.key == key } }

    /// The docs' table: key, whether it is required, what it means.
    public var markdown: String {
        var out = "| key | required | meaning |\n|---|---|---|\n"
        for f in fields { out += "| `\(f.key)` | \(f.presence.docs) | \(f.meaning) |\n" }
        return out
    }
}

/// Every section of a topology file.
public enum TopologyFields {
    public static let topology = FieldSection(id: "topology", title: "Top level", what: "the topology", fields: [
        Field("name", .name(maxBytes: 8), .required, "1–8 letters, digits or `_`; prefixes every kernel name and namespace; not `cap`"),
        Field("nodes", .sections("node"), .optional, "the machines a multi-node fabric spans (`docs/MULTIHOST.md`); without it everything is on this host"),
        Field("switches", .sections("switch"), .optional, "list of switches"),
        Field("tenants", .sections("tenant"), .required, "list of tenants (at least one)"),
        Field("expect", .sections("expectation"), .optional, "expectations `quiver verify` proves against the applied topology (below)"),
    ])

    public static let node = FieldSection(id: "node", title: "`nodes[]`", what: "a node", fields: [
        Field("name", .name(maxBytes: 15), .required, "letters, digits, `_`; what `--node` and hosts' `node:` name"),
        Field("underlay", .address, .required, "the unicast address (IPv4 or IPv6) this node's VXLAN packets come from and go to; one per node"),
    ])

    public static let `switch` = FieldSection(id: "switch", title: "`switches[]`", what: "a switch", fields: [
        Field("name", .name(maxBytes: 15), .required, "letters, digits, `_`"),
        Field("mtu", .integer(68...65535), .optional, "68–65535; also the default MTU of VNICs over it"),
        Field("dhcp", .boolean, .optional,
              "`true`: each tenant with VNICs here gets its own DHCPv4 server (dnsmasq, in a namespace Quiver owns) that answers only that tenant's MACs, each with exactly the file's address and gateway (static leases; `docs/VM.md`); not in a file with `nodes:`"),
        Field("vni", .integer(1...16_777_215), .optional,
              "with `nodes:`, a switch with VNICs on several nodes gives each tenant on it a VXLAN segment: VNI `vni` + the tenant's position among the switch's tenants (0, 1, …); default: derived from the topology, switch and tenant names"),
    ])

    public static let tenant = FieldSection(id: "tenant", title: "`tenants[]`", what: "tenant", fields: [
        Field("name", .name(maxBytes: 15), .required, "letters, digits, `_`"),
        Field("maxbw", .rate, .optional, "aggregate cap of all the tenant's VNICs, each direction (`docs/BANDWIDTH.md`)"),
        Field("hosts", .sections("host"), .required, "list of hosts (at least one)"),
    ])

    public static let host = FieldSection(id: "host", title: "`hosts[]`", what: "host", fields: [
        Field("name", .name(maxBytes: 15), .required, "unique in the topology"),
        Field("kind", .choice(["netns", "vm"]), .optional, "`netns` (default) or `vm` (a qemu guest, `docs/VM.md`)"),
        Field("vnics", .sections("vnic"), .required, "list of VNICs (at least one)"),
        Field("node", .name(maxBytes: 15), .optional, "with `nodes:` (required there): the node the host runs on"),
        Field("kernel", .path, .vmHost, "the guest's kernel, a regular file (relative to the topology file); a VM has this, `image`, or both (direct kernel boot with the root on the image's disk)"),
        Field("initrd", .path, .vmHost, "its initial ramdisk, a regular file"),
        Field("image", .path, .vmHost,
              "a qcow2 or raw base image (format from `qemu-img info`, never the name), relative to the file; opened read-only and never written: the guest boots a copy-on-write overlay of it (`docs/VM.md`)"),
        Field("disk-size", .size, .vmHost, "the overlay's virtual size (`8G`; K, M, G, T are powers of 1024), at least the image's; default: the image's"),
        Field("firmware", .choice(["bios", "uefi"]), .vmHost, "`bios` (SeaBIOS; the default without `kernel`) or `uefi` (OVMF, where the `ovmf` package is installed)"),
        Field("cloud-init", .boolean, .vmHost, "`true` (default with `image`): a NoCloud seed with the file's network, host name and keys, attached read-only; `false`: none"),
        Field("user-data", .path, .vmHost, "a cloud-config file passed to the guest as is, next to Quiver's (a MIME multipart user-data); at most 1 MiB"),
        Field("ssh-authorized-keys", .list(.text), .vmHost, "OpenSSH public keys for the image's default user (cloud-init `ssh_authorized_keys`), one line each"),
        Field("agent", .choice(["qga", "quiver", "none"]), .vmHost,
              "`qga` (qemu-guest-agent; default with `image`), `quiver` (the test guest's agent; default without `image`) or `none`: what `quiver vm list` and `quiver verify` talk to"),
        Field("cmdline", .text, .vmHost, "words appended to Quiver's on the kernel command line; one line, at most 1024 bytes"),
        Field("disk", .path, .vmHost, "a raw disk image the guest may write, a regular file"),
        Field("memory", .integer(64...65536), .vmHost, "MiB, 64–65536 (default 256)"),
        Field("cpus", .integer(1...64), .vmHost, "1–64 (default 1)"),
        Field("accel", .choice(["auto", "kvm", "tcg"]), .vmHost, "`auto` (default), `kvm` or `tcg`"),
        Field("cpu-cap", .integer(1...6400), .vmHost, "percent of one CPU the guest's qemu may use, 1–6400 (as SmartOS `cpu_cap`; default: no cap)"),
        Field("restart", .choice(["always", "on-failure", "never"]), .vmHost,
              "what `quiver daemon` does when the guest's qemu is gone without a `quiver vm stop`: `on-failure` (default: restart it unless the guest powered itself off), `always` (restart it then too) or `never` (`docs/DAEMON.md`)"),
    ])

    public static let vnic = FieldSection(id: "vnic", title: "`vnics[]`", what: "vnic", fields: [
        Field("name", .name(maxBytes: 15), .required, "the interface name inside the host (e.g. `net0`); not `lo`, `all`, `default`"),
        Field("over", .interfaceName, .required, "the switch it is plugged into (a VM's macvtap: or a host link)"),
        Field("mac", .mac, .optional, "`auto` (default: derived from topology/tenant/host/VNIC names, stable, locally administered), `random` (chosen by the kernel once, kept on re-apply), or a unicast MAC"),
        Field("ips", .list(.prefix), .optional, "list of `address/prefix` (IPv4 and IPv6), unicast"),
        Field("gateway", .address, .optional, "default route; must lie in one of the VNIC's subnets; one per family per host"),
        Field("mtu", .integer(68...65535), .optional, "68–65535; at least 1280 with IPv6"),
        Field("maxbw", .rate, .optional, "cap each direction; `K`/`M`/`G` bit/s, bare number = Mbit/s, `0` blocks"),
        Field("floor", .rate, .optional, "guaranteed rate each direction inside the tenant's cap"),
        Field("burst", .bytes, .optional, "bytes; overrides the computed bucket size of this VNIC's classes"),
        Field("queue", .bytes, .optional, "bytes; overrides the computed queue size of this VNIC's classes"),
        Field("protection", .list(.choice(["mac-nospoof", "ip-nospoof", "restricted", "dhcp-nospoof"])), .optional,
              "list of `mac-nospoof`, `ip-nospoof`, `restricted`, `dhcp-nospoof`; default all but `dhcp-nospoof` (as SmartOS); `[]` turns it off. Semantics in `docs/ISOLATION.md`"),
        Field("allowed-ips", .list(.prefix), .optional, "up to 32 prefixes for `ip-nospoof`; default: each address of the VNIC's `ips` (as /32 or /128)"),
        Field("flows", .sections("flow"), .optional, "flows with their own caps (below)"),
        Field("link-local", .autoOnOff, .netnsNIC,
              "`auto` (default): the endpoint has an IPv6 link-local address exactly when `ips` holds an IPv6 address; `on`; `off`. An endpoint without one sends no IPv6 start-up traffic (duplicate address detection, MLD reports, router solicitations), like a Docker container on an IPv4-only network. Turning it on adds the address the kernel would have made from the MAC; turning it off removes it. Fabric links Quiver makes (switches, ports, IFBs, taps, macvtaps) never have one"),
        Field("queues", .integer(1...16), .vmNIC, "virtio queues, 1–16 (default 1)"),
        Field("model", .choice(["virtio"]), .vmNIC, "`virtio` (the only one)"),
        Field("mode", .choice(["tap", "macvtap"]), .vmNIC,
              "`tap` (a port of the switch `over`, default) or `macvtap` (over the switch's bridge, or over a host link when `over` names no switch — see `docs/VM.md`)"),
    ])

    public static let flow = FieldSection(id: "flow", title: "`flows[]`", what: "flow", fields: [
        Field("name", .text, .required, "unique in the VNIC"),
        Field("transport", .choice(["tcp", "udp", "icmp"]), .optional, "`tcp`, `udp`, `icmp`; required with a port"),
        Field("local-ip", .prefix, .optional, "prefix; \"local\" is the VNIC's endpoint"),
        Field("remote-ip", .prefix, .optional, "prefix"),
        Field("local-port", .port, .optional, "1–65535"),
        Field("remote-port", .port, .optional, "1–65535"),
        Field("maxbw", .rate, .required, "cap of the flow; `0` blocks it"),
    ])

    public static let reach = FieldSection(id: "reach", title: "`reach`", what: "reach", fields: [
        Field("from", .endpoint, .required, "`tenant/host` or `tenant/host/vnic`"),
        Field("to", .endpoint, .required, "the same"),
        Field("probe", .oneOrList(.choice(["icmp", "tcp", "arp"])), .optional, "`icmp` (default for `reach`), `tcp`, `arp`, or a list of them (default for `no-reach`: all three)"),
        Field("port", .port, .optional, "the TCP probe's port (default 7)"),
    ])

    public static let configured = FieldSection(id: "configured", title: "`configured`", what: "configured", fields: [
        Field("host", .endpoint, .required, "`tenant/host` of a guest whose agent is `qga`: each NIC inside it must carry exactly the file's MAC and addresses, and the default route the file's gateway"),
    ])

    public static let noReach = FieldSection(id: "no-reach", title: "`no-reach`", what: "no-reach", fields: reach.fields)

    public static let bandwidth = FieldSection(id: "bandwidth", title: "`bandwidth`", what: "bandwidth", fields: [
        Field("from", .endpoint, .required, "the sending endpoint"),
        Field("to", .endpoint, .required, "the receiving endpoint"),
        Field("rate", .rate, .required, "the cap expected on the wire"),
        Field("tolerance", .percentage, .optional, "above 0, below 100% (default `10%`)"),
        Field("seconds", .decimal(1...60), .optional, "1–60 (default 3)"),
    ])

    public static let spoof = FieldSection(id: "spoof", title: "`spoof`", what: "spoof", fields: [
        Field("from", .endpoint, .required, "the endpoint that forges"),
        Field("kind", .oneOrList(.choice(["mac", "ip", "arp", "ethertype"])), .optional, "`mac`, `ip`, `arp`, `ethertype` or a list of them (default all)"),
        Field("count", .integer(1...10000), .optional, "frames of each kind, 1–10000 (default 100)"),
    ])

    /// Mappings of keys, in the order the docs show them.
    public static let sections: [FieldSection] = [topology, node, `switch`, tenant, host, vnic, flow]
    /// The kinds of `expect[]` entries: each is one key naming the kind, holding its fields.
    public static let expectations: [FieldSection] = [reach, noReach, bandwidth, spoof, configured]

    public static func section(_ id: String) -> FieldSection? { (sections + expectations).first { $0.id == id } }
}
