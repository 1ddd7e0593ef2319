import CNetlink
import Glibc
import QuiverNetlink
import SystemPackage

/// What the kernel reports about a tun/tap link (`IFLA_INFO_DATA` of kind "tun").
public struct TunInfo: Sendable, Equatable {
    public static let kind = "tun"
    public var isTap: Bool
    public var vnetHeader: Bool
    public var persistent: Bool
    public var multiQueue: Bool
    public var queues: UInt32
    public var owner: UInt32?
    public var group: UInt32?

    init(decoding d: NetlinkAttributes?) {
        isTap = d?.u8(IFLA_TUN_TYPE) == UInt8(IFF_TAP)
        vnetHeader = (d?.u8(IFLA_TUN_VNET_HDR) ?? 0) != 0
        persistent = (d?.u8(IFLA_TUN_PERSIST) ?? 0) != 0
        multiQueue = (d?.u8(IFLA_TUN_MULTI_QUEUE) ?? 0) != 0
        queues = d?.u32(IFLA_TUN_NUM_QUEUES) ?? 0
        owner = d?.u32(IFLA_TUN_OWNER)
        group = d?.u32(IFLA_TUN_GROUP)
    }
}

/// How to make a tap.
public struct TapOptions: Sendable, Equatable {
    /// `IFF_VNET_HDR`: each frame carries a virtio-net header (what vhost-net and qemu expect).
    public var vnetHeader: Bool = true
    /// Number of queues; more than one sets `IFF_MULTI_QUEUE` and opens one fd per queue.
    public var queues: Int = 1
    /// Keep the device after the last fd closes (`TUNSETPERSIST`).
    public var persistent: Bool = false
    public var owner: uid_t?
    public var group: gid_t?
    /// `TUNSETOFFLOAD` flags; only with a vnet header. Default: checksum + TSO4/6, as Firecracker.
    public var offloads: UInt32 = UInt32(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
    /// `TUNSETVNETHDRSZ`: 12 bytes is `virtio_net_hdr_mrg_rxbuf`, what virtio-net 1.0 uses.
    public var vnetHeaderSize: Int32 = 12

    public init(vnetHeader: Bool = true, queues: Int = 1, persistent: Bool = false, owner: uid_t? = nil, group: gid_t? = nil) {
        self.vnetHeader = vnetHeader
        self.queues = queues
        self.persistent = persistent
        self.owner = owner
        self.group = group
    }
}

/// A tap device and the queue descriptors this process holds for it. rtnetlink cannot create
/// taps: they are made through `/dev/net/tun` with `TUNSETIFF`, in the namespace of the thread
/// that opens it (so Quiver opens it from a thread inside the target namespace).
///
/// The queue descriptors are owned by this object and closed once, by ``close()`` or on deinit,
/// unless handed off with ``takeQueues()`` (e.g. to qemu).
public final class Tap: @unchecked Sendable {
    public let name: InterfaceName
    public let namespace: NetworkNamespace?
    public private(set) var queues: [FileDescriptor]

    private init(name: InterfaceName, namespace: NetworkNamespace?, queues: [FileDescriptor]) {
        self.name = name
        self.namespace = namespace
        self.queues = queues
    }

    deinit { close() }

    /// Creates the tap and opens `options.queues` descriptors for it.
    /// Equivalent to `ip tuntap add NAME mode tap [vnet_hdr] [multi_queue] [user U] [group G]`
    /// when `persistent`, else to what qemu/Firecracker do with an fd-owned tap.
    public static func create(_ name: InterfaceName, _ options: TapOptions = TapOptions(),
                              in namespace: NetworkNamespace? = nil) throws -> Tap {
        guard (1...256).contains(options.queues) else {
            throw InvalidValue("tap \(name): queues must be 1–256, got \(options.queues)")
        }
        let make = { () throws -> [FileDescriptor] in try openQueues(name, options) }
        let fds = try namespace.map { try $0.run(make) } ?? make()
        return Tap(name: name, namespace: namespace, queues: fds)
    }

    private static func openQueues(_ name: InterfaceName, _ o: TapOptions) throws -> [FileDescriptor] {
        var flags = Int16(IFF_TAP | IFF_NO_PI)
        if o.vnetHeader { flags |= Int16(IFF_VNET_HDR) }
        if o.queues > 1 { flags |= Int16(IFF_MULTI_QUEUE) }
        var fds: [FileDescriptor] = []
        do {
            for _ in 0..<o.queues {
                let fd: FileDescriptor
                do {
                    fd = try FileDescriptor.open("/dev/net/tun", .readWrite, options: [.closeOnExec])
                } catch {
                    throw SystemCallError("open /dev/net/tun for tap", name.rawValue, errno: error as? Errno ?? .noSuchFileOrDirectory)
                }
                fds.append(fd)
                var actual = [CChar](repeating: 0, count: 16)
                try check(quiver_tun_set_iff(fd.rawValue, name.rawValue, flags, &actual), "TUNSETIFF", name)
            }
            let first = fds[0].rawValue
            if o.vnetHeader {
                try check(quiver_tun_set_vnet_hdr_size(first, o.vnetHeaderSize), "TUNSETVNETHDRSZ", name)
                try check(quiver_tun_set_offload(first, o.offloads), "TUNSETOFFLOAD", name)
            }
            if let owner = o.owner { try check(quiver_tun_set_owner(first, owner), "TUNSETOWNER", name) }
            if let group = o.group { try check(quiver_tun_set_group(first, group), "TUNSETGROUP", name) }
            if o.persistent { try check(quiver_tun_set_persist(first, 1), "TUNSETPERSIST", name) }
            return fds
        } catch {
            for fd in fds { try? fd.close() }
            throw error
        }
    }

    private static func check(_ rc: Int32, _ step: String, _ name: InterfaceName) throws(SystemCallError) {
        try checkTunIoctl(rc, step, "tap \(name)")
    }

    /// Closes every queue descriptor this object still owns. Idempotent. A non-persistent tap
    /// disappears when its last descriptor closes.
    public func close() {
        for fd in queues { try? fd.close() }
        queues = []
    }

    /// Hands the queue descriptors to the caller, who then owns (and must close) them.
    public func takeQueues() -> [FileDescriptor] {
        defer { queues = [] }
        return queues
    }

    /// Makes an fd-owned tap persistent or not after the fact.
    public func setPersistent(_ on: Bool) throws {
        guard let fd = queues.first else { throw InvalidValue("tap \(name) has no open queue") }
        try Tap.check(quiver_tun_set_persist(fd.rawValue, on ? 1 : 0), "TUNSETPERSIST", name)
    }
}

/// A `/dev/net/tun` or `/dev/tapN` ioctl shim's result: 0, or -errno thrown as the failed step.
func checkTunIoctl(_ rc: Int32, _ step: String, _ object: String) throws(SystemCallError) {
    if rc < 0 { throw SystemCallError(step, object, errno: Errno(rawValue: -rc)) }
}
