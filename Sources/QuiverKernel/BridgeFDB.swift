import CNetlink
import QuiverNetlink

/// Entries of a bridge's forwarding database that Quiver writes: a MAC that belongs to the
/// bridge device itself (`local`), so frames to it are delivered up the bridge device instead of
/// flooded to every port. A macvtap over a bridge needs one: its frames leave through the bridge
/// device, so the bridge never learns its MAC.
public enum BridgeFDBRequest {
    static func message(_ type: Int, _ flags: Int32, mac: MACAddress, bridgeIndex: Int32) -> NetlinkMessage {
        var m = NetlinkMessage(type: type, flags: flags)
        var h = ndmsg()
        h.ndm_family = UInt8(AF_BRIDGE)
        h.ndm_ifindex = bridgeIndex
        h.ndm_state = UInt16(NUD_PERMANENT)
        h.ndm_flags = UInt8(NTF_SELF)
        m.append(header: h)
        m.put(NDA_LLADDR, bytes: mac.bytes)
        return m
    }

    /// `bridge fdb replace MAC dev BRIDGE self local`.
    public static func addLocal(_ mac: MACAddress, bridgeIndex: Int32, bridgeName: String) -> NetlinkRequest {
        NetlinkRequest(message(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, mac: mac, bridgeIndex: bridgeIndex),
                       RequestContext("add local fdb entry \(mac) to bridge", bridgeName))
    }

    /// `bridge fdb del MAC dev BRIDGE self local`.
    public static func deleteLocal(_ mac: MACAddress, bridgeIndex: Int32, bridgeName: String) -> NetlinkRequest {
        NetlinkRequest(message(RTM_DELNEIGH, 0, mac: mac, bridgeIndex: bridgeIndex),
                       RequestContext("delete local fdb entry \(mac) from bridge", bridgeName))
    }
}
