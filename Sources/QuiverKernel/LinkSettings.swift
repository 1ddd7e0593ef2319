import CNetlink
import Glibc
import QuiverNetlink
import SystemPackage

/// Attributes common to every link, for creating or changing one. nil leaves a value alone.
public struct LinkSettings: Sendable, Equatable {
    public var up: Bool?
    public var mtu: UInt32?
    public var mac: MACAddress?
    /// Index of the bridge to enslave to; 0 releases from any master.
    public var masterIndex: Int32?
    public var group: UInt32?
    /// `ifalias`; "" clears it.
    public var alias: String?
    public var txQueueLength: UInt32?
    /// Move the link into another namespace.
    public var namespace: NamespaceTarget?
    /// Queue counts, at creation only (`numtxqueues`/`numrxqueues`); the kernel's default for a
    /// veth is one per possible CPU, each with its sysfs objects.
    public var txQueues: UInt32?
    public var rxQueues: UInt32?
    /// At creation only: the interface index to give the link (`ip link add … index N`).
    public var index: Int32?
    /// `ip link set … addrgenmode eui64|none`: false keeps the link from giving itself an IPv6
    /// link-local address (and so from duplicate address detection, MLD reports and router
    /// solicitations) when it comes up; an address already there stays. The kernel applies it
    /// only to an existing link, after any up/down in the same request.
    public var ipv6LinkLocal: Bool?

    public init(up: Bool? = nil, mtu: UInt32? = nil, mac: MACAddress? = nil, masterIndex: Int32? = nil,
                group: UInt32? = nil, alias: String? = nil, txQueueLength: UInt32? = nil,
                namespace: NamespaceTarget? = nil, txQueues: UInt32? = nil, rxQueues: UInt32? = nil,
                ipv6LinkLocal: Bool? = nil) {
        self.ipv6LinkLocal = ipv6LinkLocal
        self.txQueues = txQueues
        self.rxQueues = rxQueues
        self.up = up
        self.mtu = mtu
        self.mac = mac
        self.masterIndex = masterIndex
        self.group = group
        self.alias = alias
        self.txQueueLength = txQueueLength
        self.namespace = namespace
    }

    /// The `ifinfomsg` for these settings: `IFF_UP` in flags/change only when `up` is set.
    func header(index: Int32 = 0) -> ifinfomsg {
        var h = ifinfomsg()
        h.ifi_family = UInt8(AF_UNSPEC)
        h.ifi_index = index
        if let up {
            h.ifi_change = UInt32(IFF_UP)
            h.ifi_flags = up ? UInt32(IFF_UP) : 0
        }
        return h
    }

    /// Everything but the header, the alias and the IPv6 mode (the kernel ignores `IFLA_IFALIAS`
    /// and `IFLA_AF_SPEC` when creating).
    func encode(into m: inout NetlinkMessage) {
        if let mtu { m.put(IFLA_MTU, u32: mtu) }
        if let mac { m.put(IFLA_ADDRESS, bytes: mac.bytes) }
        if let masterIndex { m.put(IFLA_MASTER, u32: UInt32(bitPattern: masterIndex)) }
        if let group { m.put(IFLA_GROUP, u32: group) }
        if let txQueueLength { m.put(IFLA_TXQLEN, u32: txQueueLength) }
        if let txQueues { m.put(IFLA_NUM_TX_QUEUES, u32: txQueues) }
        if let rxQueues { m.put(IFLA_NUM_RX_QUEUES, u32: rxQueues) }
        namespace?.encode(into: &m)
    }
}

extension LinkSettings {
    /// The ``ipv6LinkLocal`` value for a link that should have no IPv6 link-local address:
    /// false where the kernel has IPv6, nil where it runs without (it would refuse the setting).
    public static let noLinkLocal: Bool? = access("/proc/sys/net/ipv6", F_OK) == 0 ? false : nil
}
