import CNetlink
import Testing
@testable import QuiverKernel
@testable import QuiverNetlink

/// Golden bytes for the forwarding and neighbour entries of VXLAN segments, and the VXLAN and
/// bridge-port attributes they rely on, written out field by field.
@Suite struct GoldenNeighbourMessageTests {
    private func bytes(_ r: NetlinkRequest) -> [UInt8] {
        var m = r.message
        m.sequence = 1
        return m.bytes
    }

    let mac = MACAddress(0x02, 0x01, 0x02, 0x03, 0x04, 0x05)

    /// `bridge fdb append 02:01:02:03:04:05 dev VX dst 192.0.2.7 self permanent`, VX at index 4.
    @Test func tunnelEntryIsAppended() throws {
        #expect(bytes(NeighbourRequest.add(.tunnel(mac, remote: try IPAddress("192.0.2.7"), ifindex: 4))) == [
            0x30, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x0c, // len 48, RTM_NEWNEIGH, REQUEST|CREATE|APPEND
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 1, pid 0
            0x07, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, // ndmsg: AF_BRIDGE, pad, ifindex 4
            0x80, 0x00, 0x02, 0x00,                         //   state NUD_PERMANENT, flags NTF_SELF, type 0
            0x0a, 0x00, 0x02, 0x00, 0x02, 0x01, 0x02, 0x03, // NDA_LLADDR
            0x04, 0x05, 0x00, 0x00,
            0x08, 0x00, 0x01, 0x00, 0xc0, 0x00, 0x02, 0x07, // NDA_DST 192.0.2.7
        ])
    }

    /// `bridge fdb add 02:01:02:03:04:05 dev VX master static`.
    @Test func bridgeStaticEntry() {
        #expect(bytes(NeighbourRequest.add(.bridgeStatic(mac, port: 4))) == [
            0x28, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x05, // len 40, RTM_NEWNEIGH, REQUEST|REPLACE|CREATE
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x07, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, // AF_BRIDGE, ifindex 4
            0x40, 0x00, 0x04, 0x00,                         // NUD_NOARP, NTF_MASTER
            0x0a, 0x00, 0x02, 0x00, 0x02, 0x01, 0x02, 0x03, // NDA_LLADDR
            0x04, 0x05, 0x00, 0x00,
        ])
    }

    /// `ip neigh replace 10.0.0.1 lladdr 02:01:02:03:04:05 dev BR nud permanent`, BR at index 3;
    /// and its delete (the same key, no flags).
    @Test func permanentARPEntryAndItsDelete() throws {
        let n = Neighbour.address(try IPAddress("10.0.0.1"), mac: mac, ifindex: 3)
        let body: [UInt8] = [
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, // AF_INET, ifindex 3
            0x80, 0x00, 0x00, 0x00,                         // NUD_PERMANENT
            0x08, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x01, // NDA_DST 10.0.0.1
            0x0a, 0x00, 0x02, 0x00, 0x02, 0x01, 0x02, 0x03, // NDA_LLADDR
            0x04, 0x05, 0x00, 0x00,
        ]
        #expect(bytes(NeighbourRequest.add(n)) == [0x30, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x05] + body)
        #expect(bytes(NeighbourRequest.delete(n)) == [0x30, 0x00, 0x00, 0x00, 0x1d, 0x00, 0x01, 0x00] + body) // RTM_DELNEIGH
    }

    /// A segment's VXLAN device carries `nolearning` (IFLA_VXLAN_LEARNING 0); its port
    /// `neigh_suppress on` (IFLA_BRPORT_NEIGH_SUPPRESS 1) and `learning off`.
    @Test func vxlanWithoutLearningAndSuppressingPort() throws {
        let add = bytes(LinkRequest.add("vx0", Vxlan(vni: 100, local: try IPAddress("192.0.2.1"), learning: false))[0])
        #expect(add.windows(of: [0x08, 0x00, 0x01, 0x00, 0x64, 0x00, 0x00, 0x00]), "IFLA_VXLAN_ID 100")
        #expect(add.windows(of: [0x05, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00]), "IFLA_VXLAN_LEARNING 0")
        #expect(!bytes(LinkRequest.add("vx0", Vxlan(vni: 100))[0]).windows(of: [0x05, 0x00, 0x07, 0x00]), "left to the kernel when nil")
        let port = bytes(LinkRequest.setBridgePort("vx0", BridgePortFlags(learning: false, neighSuppress: true)))
        #expect(port.windows(of: [0x05, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00]), "IFLA_BRPORT_LEARNING 0")
        #expect(port.windows(of: [0x05, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00]), "IFLA_BRPORT_NEIGH_SUPPRESS 1")
    }
}

extension Array where Element == UInt8 {
    func windows(of needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}
