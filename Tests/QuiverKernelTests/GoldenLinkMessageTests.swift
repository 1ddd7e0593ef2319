import CNetlink
import Testing
@testable import QuiverKernel
@testable import QuiverNetlink

/// Golden bytes for the link and address requests, written out field by field.
@Suite struct GoldenLinkMessageTests {
    private func bytes(_ r: NetlinkRequest, seq: UInt32 = 1) -> [UInt8] {
        var m = r.message
        m.sequence = seq
        return m.bytes
    }

    @Test func newlinkVethWithPeer() {
        let r = LinkRequest.add("v0", Veth(peer: "v1"))
        #expect(r.count == 1)
        #expect(bytes(r[0]) == [
            0x58, 0x00, 0x00, 0x00, 0x10, 0x00, 0x01, 0x06, // len 88, RTM_NEWLINK, REQUEST|EXCL|CREATE
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 1, pid 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg: family, pad, type, index 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   flags 0, change 0
            0x07, 0x00, 0x03, 0x00, 0x76, 0x30, 0x00, 0x00, // IFLA_IFNAME "v0"
            0x30, 0x00, 0x12, 0x80,                         // IFLA_LINKINFO (nested), len 48
            0x09, 0x00, 0x01, 0x00, 0x76, 0x65, 0x74, 0x68, //   IFLA_INFO_KIND "veth"
            0x00, 0x00, 0x00, 0x00,
            0x20, 0x00, 0x02, 0x80,                         //   IFLA_INFO_DATA (nested), len 32
            0x1c, 0x00, 0x01, 0x80,                         //     VETH_INFO_PEER (nested), len 28
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //       peer ifinfomsg
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x07, 0x00, 0x03, 0x00, 0x76, 0x31, 0x00, 0x00, //       IFLA_IFNAME "v1"
        ])
    }

    @Test func newlinkBridgeUpWithMTU() {
        let r = LinkRequest.add("br0", Bridge(), LinkSettings(up: true, mtu: 1400))
        #expect(bytes(r[0]) == [
            0x40, 0x00, 0x00, 0x00, 0x10, 0x00, 0x01, 0x06, // len 64, RTM_NEWLINK, REQUEST|EXCL|CREATE
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg, index 0
            0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   flags IFF_UP, change IFF_UP
            0x08, 0x00, 0x03, 0x00, 0x62, 0x72, 0x30, 0x00, // IFLA_IFNAME "br0"
            0x08, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // IFLA_MTU 1400
            0x10, 0x00, 0x12, 0x80,                         // IFLA_LINKINFO, len 16
            0x0b, 0x00, 0x01, 0x00, 0x62, 0x72, 0x69, 0x64, //   IFLA_INFO_KIND "bridge"
            0x67, 0x65, 0x00, 0x00,
        ])
    }

    /// `bridge fdb replace 02:00:00:00:00:aa dev br0 self local` with br0 at index 7, and an
    /// explicit interface index on a new macvtap (`ip link add … index 1001`).
    @Test func bridgeLocalFDBEntryAndRequestedIndex() throws {
        let mac = try MACAddress("02:00:00:00:00:aa")
        #expect(bytes(BridgeFDBRequest.addLocal(mac, bridgeIndex: 7, bridgeName: "br0")) == [
            0x28, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x05, // len 40, RTM_NEWNEIGH, REQUEST|REPLACE|CREATE
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 1, pid 0
            0x07, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, // ndmsg: AF_BRIDGE, pad, ifindex 7
            0x80, 0x00, 0x02, 0x00,                         //   state NUD_PERMANENT, flags NTF_SELF, type 0
            0x0a, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, // NDA_LLADDR 02:00:00:00:00:aa
            0x00, 0xaa, 0x00, 0x00,
        ])
        #expect(bytes(BridgeFDBRequest.deleteLocal(mac, bridgeIndex: 7, bridgeName: "br0"))[4..<8] == [0x1d, 0x00, 0x01, 0x00])
        var settings = LinkSettings(up: true)
        settings.index = 1001
        let add = bytes(LinkRequest.add("mt0", Macvtap(lowerIndex: 7), settings)[0])
        #expect(Array(add[16..<32]) == [0x00, 0x00, 0x00, 0x00, 0xe9, 0x03, 0x00, 0x00, // ifinfomsg: index 1001
                                        0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]) //   IFF_UP in flags and change
    }

    @Test func aliasIsASecondRequest() {
        let r = LinkRequest.add("br0", Bridge(), LinkSettings(alias: "quiver:lab/stub0"))
        #expect(r.count == 2)
        #expect(r[1].message.type == UInt16(RTM_NEWLINK))
        let attrs = NetlinkAttributes(bytes: r[1].message.bytes, start: 32, end: r[1].message.length)
        #expect(attrs.string(IFLA_IFALIAS) == "quiver:lab/stub0")
        #expect(r[1].message.flags & UInt16(NLM_F_CREATE) == 0)
    }

    @Test func newaddrIPv4() throws {
        let r = AddressRequest.add(try IPPrefix("10.0.0.1/24"), linkIndex: 5, linkName: "v0")
        #expect(bytes(r) == [
            0x28, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01, 0x06, // len 40, RTM_NEWADDR, REQUEST|EXCL|CREATE
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, 0x18, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, // ifaddrmsg: AF_INET, /24, flags 0, scope universe, index 5
            0x08, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x01, // IFA_LOCAL 10.0.0.1
            0x08, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x01, // IFA_ADDRESS 10.0.0.1
        ])
    }

    @Test func newaddrIPv6() throws {
        let r = AddressRequest.add(try IPPrefix("fd00::1/64"), linkIndex: 5, linkName: "v0")
        let addr: [UInt8] = [0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]
        #expect(bytes(r) == [
            0x48, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01, 0x06, // len 72, RTM_NEWADDR
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x0a, 0x40, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, // ifaddrmsg: AF_INET6, /64, index 5
            0x14, 0x00, 0x02, 0x00,                         // IFA_LOCAL, len 20
        ] + addr + [
            0x14, 0x00, 0x01, 0x00,                         // IFA_ADDRESS, len 20
        ] + addr + [
            0x08, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, // IFA_FLAGS IFA_F_NODAD
        ])
    }

    @Test func dellinkByGroup() {
        #expect(bytes(LinkRequest.deleteGroup(77)) == [
            0x28, 0x00, 0x00, 0x00, 0x11, 0x00, 0x01, 0x00, // len 40, RTM_DELLINK, REQUEST
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg index 0: by group
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x1b, 0x00, 0x4d, 0x00, 0x00, 0x00, // IFLA_GROUP 77
        ])
    }

    /// `ip link set p0 addrgenmode none`, and a link made up without a link-local address:
    /// created down, given the mode (with its alias), then brought up.
    @Test func ipv6AddressGenerationMode() throws {
        #expect(bytes(LinkRequest.change("p0", LinkSettings(ipv6LinkLocal: false))) == [
            0x38, 0x00, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, // len 56, RTM_NEWLINK, REQUEST
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg, no flag change
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x07, 0x00, 0x03, 0x00, 0x70, 0x30, 0x00, 0x00, // IFLA_IFNAME "p0"
            0x10, 0x00, 0x1a, 0x80,                         // IFLA_AF_SPEC (nested), len 16
            0x0c, 0x00, 0x0a, 0x80,                         //   AF_INET6 (nested), len 12
            0x05, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, //     IFLA_INET6_ADDR_GEN_MODE none
        ])
        let r = LinkRequest.add("b0", Bridge(), LinkSettings(up: true, alias: "x", ipv6LinkLocal: false))
        #expect(r.count == 3)
        #expect(r[0].message.bytes[24] == 0, "created without IFF_UP")
        #expect(r[1].context.operation == "change link" && r[1].message.bytes.count == 64, "alias and mode in one change")
        #expect(Array(r[2].message.bytes[24..<32]) == [1, 0, 0, 0, 1, 0, 0, 0], "then up")
        // Without the mode nothing is deferred.
        #expect(LinkRequest.add("b0", Bridge(), LinkSettings(up: true)).count == 1)
        // The kernel's link-local address for a MAC (modified EUI-64).
        #expect(try MACAddress("02:82:ff:e7:f7:66").ipv6LinkLocal.description == "fe80::82:ffff:fee7:f766/64")
    }

    /// The planner's reads: `ip link show` without counters, `ip -4 route show table main`
    /// (the kernel filters by table on a strict-checking socket), `ip -6 addr show`.
    @Test func planningDumps() {
        #expect(bytes(LinkRequest.dump(statistics: false)) == [
            0x28, 0x00, 0x00, 0x00, 0x12, 0x00, 0x01, 0x03, // len 40, RTM_GETLINK, REQUEST|DUMP
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg, all zero
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x1d, 0x00, 0x08, 0x00, 0x00, 0x00, // IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS
        ])
        #expect(bytes(LinkRequest.dump()).count == 32)
        #expect(bytes(RouteRequest.dump(family: AF_INET)) == [
            0x1c, 0x00, 0x00, 0x00, 0x1a, 0x00, 0x01, 0x03, // len 28, RTM_GETROUTE, REQUEST|DUMP
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, 0x00, 0x00, 0x00, 0xfe, 0x00, 0x00, 0x00, // rtmsg: AF_INET, lengths 0, tos 0, table main
            0x00, 0x00, 0x00, 0x00,                         //   flags 0
        ])
        #expect(bytes(AddressRequest.dump(family: AF_INET6)) == [
            0x18, 0x00, 0x00, 0x00, 0x16, 0x00, 0x01, 0x03, // len 24, RTM_GETADDR, REQUEST|DUMP
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifaddrmsg: AF_INET6, index 0
        ])
    }

    /// `ip stats show group link`: RTM_GETSTATS for every link, asking only for
    /// IFLA_STATS_LINK_64 — what a `/metrics` scrape reads once it knows the indices.
    @Test func linkCountersDump() {
        #expect(bytes(LinkCounterRequest.dump()) == [
            0x1c, 0x00, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x03, // len 28, RTM_GETSTATS, REQUEST|DUMP
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // if_stats_msg: AF_UNSPEC, pads, ifindex 0
            0x01, 0x00, 0x00, 0x00,                         //   filter_mask: bit of IFLA_STATS_LINK_64
        ])
    }

    /// An RTM_NEWSTATS answer, laid out by hand: if_stats_msg for index 7, then
    /// IFLA_STATS_LINK_64 with counters 1, 2, 3… in `rtnl_link_stats64` order (rx_packets,
    /// tx_packets, rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped, multicast…).
    /// Without the attribute the link still comes back, with no counters.
    @Test func linkCountersDecode() throws {
        let header: [UInt8] = [0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]
        let size = MemoryLayout<rtnl_link_stats64>.size
        var counters: [UInt8] = []
        for i in 1...UInt64(size / 8) { withUnsafeBytes(of: i.littleEndian) { counters.append(contentsOf: $0) } }
        let length = UInt16(4 + size)
        let attribute = [UInt8(length & 0xff), UInt8(length >> 8), 0x01, 0x00] + counters
        let message = ReceivedMessage(type: UInt16(RTM_NEWSTATS), flags: 0, sequence: 1, portID: 0, payload: header + attribute)
        let (index, s) = try LinkCounterRequest.decode(message)
        #expect(index == 7)
        #expect(s?.rxPackets == 1 && s?.txPackets == 2 && s?.rxBytes == 3 && s?.txBytes == 4)
        #expect(s?.rxErrors == 5 && s?.txErrors == 6 && s?.rxDropped == 7 && s?.txDropped == 8 && s?.multicast == 9)
        let bare = try LinkCounterRequest.decode(ReceivedMessage(type: UInt16(RTM_NEWSTATS), flags: 0, sequence: 1, portID: 0, payload: header))
        #expect(bare.index == 7 && bare.statistics == nil)
        #expect(throws: NetlinkProtocolError.self) {
            try LinkCounterRequest.decode(ReceivedMessage(type: UInt16(RTM_NEWSTATS), flags: 0, sequence: 1, portID: 0, payload: [0, 0, 0]))
        }
    }
}
