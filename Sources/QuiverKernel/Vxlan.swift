import CNetlink
import QuiverNetlink

/// A VXLAN tunnel endpoint.
/// Equivalent to `ip link add NAME type vxlan id VNI [local A] [remote A | group G] [dstport P] [dev LOWER]`.
public struct Vxlan: LinkKind, Equatable {
    public static let kind = "vxlan"
    public var vni: UInt32
    public var local: IPAddress?
    /// A unicast remote or a multicast group (the kernel uses one attribute for both).
    public var remote: IPAddress?
    /// UDP destination port; the IANA port 4789 when nil.
    public var port: UInt16?
    /// Index of the lower device (needed with a multicast group).
    public var lowerIndex: Int32?
    /// Whether the device learns source MACs of what it receives (`[no]learning`); nil: the
    /// kernel's default (on).
    public var learning: Bool?

    public init(vni: UInt32, local: IPAddress? = nil, remote: IPAddress? = nil, port: UInt16? = 4789, lowerIndex: Int32? = nil,
                learning: Bool? = nil) {
        self.learning = learning
        self.vni = vni
        self.local = local
        self.remote = remote
        self.port = port
        self.lowerIndex = lowerIndex
    }

    public func encodeInfoData(into m: inout NetlinkMessage) {
        m.nest(IFLA_INFO_DATA) { d in
            d.put(IFLA_VXLAN_ID, u32: vni)
            if let remote {
                d.put(remote.isV4 ? IFLA_VXLAN_GROUP : IFLA_VXLAN_GROUP6, bytes: remote.bytes)
            }
            if let local {
                d.put(local.isV4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, bytes: local.bytes)
            }
            if let port { d.put(IFLA_VXLAN_PORT, be16: port) }
            if let lowerIndex { d.put(IFLA_VXLAN_LINK, u32: UInt32(bitPattern: lowerIndex)) }
            if let learning { d.put(IFLA_VXLAN_LEARNING, u8: learning ? 1 : 0) }
        }
    }

    init(decoding d: NetlinkAttributes?) {
        vni = d?.u32(IFLA_VXLAN_ID) ?? 0
        let remoteBytes = d?.payload(IFLA_VXLAN_GROUP) ?? d?.payload(IFLA_VXLAN_GROUP6)
        remote = remoteBytes.flatMap { try? IPAddress(bytes: $0) }
        let localBytes = d?.payload(IFLA_VXLAN_LOCAL) ?? d?.payload(IFLA_VXLAN_LOCAL6)
        local = localBytes.flatMap { try? IPAddress(bytes: $0) }
        port = d?.be16(IFLA_VXLAN_PORT)
        lowerIndex = d?.u32(IFLA_VXLAN_LINK).map { Int32(bitPattern: $0) }
        learning = d?.u8(IFLA_VXLAN_LEARNING).map { $0 != 0 }
    }
}
