import CNetlink
import Testing
@testable import QuiverNetlink

/// Golden bytes: each request built by the codec is compared with bytes written out by hand,
/// field by field, from the kernel's struct and attribute layouts.
@Suite struct GoldenMessageTests {
    @Test func emptyRequestHeader() {
        let m = NetlinkMessage(type: RTM_GETLINK, flags: NLM_F_DUMP, sequence: 0x01020304)
        #expect(m.bytes == [
            0x10, 0x00, 0x00, 0x00, // nlmsg_len 16
            0x12, 0x00,             // nlmsg_type RTM_GETLINK (18)
            0x01, 0x03,             // nlmsg_flags NLM_F_REQUEST | NLM_F_DUMP (0x301)
            0x04, 0x03, 0x02, 0x01, // nlmsg_seq
            0x00, 0x00, 0x00, 0x00, // nlmsg_pid
        ])
    }

    @Test func attributesAreAlignedAndNestsCarryTheNestedFlag() {
        var m = NetlinkMessage(type: 100, flags: 0, sequence: 0)
        m.put(1, u8: 0xAB)
        m.nest(2) { n in
            n.put(3, u16: 0x1234)
        }
        m.put(4, string: "abc")
        #expect(m.bytes == [
            0x2c, 0x00, 0x00, 0x00, 0x64, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, // header, len 44
            0x05, 0x00, 0x01, 0x00, 0xAB, 0x00, 0x00, 0x00,                       // u8: len 5, padded to 8
            0x0c, 0x00, 0x02, 0x80,                                               // nest type 2 | NLA_F_NESTED, len 12
            0x06, 0x00, 0x03, 0x00, 0x34, 0x12, 0x00, 0x00,                       //   u16: len 6, padded
            0x08, 0x00, 0x04, 0x00, 0x61, 0x62, 0x63, 0x00,                       // "abc\0": len 8
        ])
    }

    @Test func growsPastItsFirstBuffer() {
        var m = NetlinkMessage(type: 100, flags: 0)
        let big = [UInt8](repeating: 7, count: 1000)
        m.nest(1) { n in
            for i in 0..<5 { n.put(i, bytes: big) }
        }
        #expect(m.length == 16 + 4 + 5 * 1004)
        let parsed = NetlinkAttributes(bytes: m.bytes, start: 16, end: m.length)
        let inner = parsed.nested(1)!
        #expect(inner.entries.count == 5)
        #expect(inner.payload(4) == big)
    }

    @Test func decodesErrorWithExtendedAck() throws {
        // What the kernel sends for a failed RTM_NEWLINK when NETLINK_CAP_ACK and NETLINK_EXT_ACK
        // are on: the error, the echoed request header only, then TLVs.
        let raw: [UInt8] = [
            0x44, 0x00, 0x00, 0x00,             // nlmsg_len 68
            0x02, 0x00,                         // NLMSG_ERROR
            0x00, 0x03,                         // NLM_F_CAPPED (0x100) | NLM_F_ACK_TLVS (0x200)
            0x07, 0x00, 0x00, 0x00,             // seq 7
            0xd2, 0x04, 0x00, 0x00,             // pid 1234
            0xef, 0xff, 0xff, 0xff,             // error -17 (EEXIST)
            0x58, 0x00, 0x00, 0x00, 0x10, 0x00, 0x05, 0x06, 0x07, 0x00, 0x00, 0x00, 0, 0, 0, 0, // echoed nlmsghdr
            0x18, 0x00, 0x01, 0x00,             // NLMSGERR_ATTR_MSG, len 24
        ] + Array("Unknown device type".utf8) + [0x00] + [
            0x08, 0x00, 0x02, 0x00, 0x28, 0x00, 0x00, 0x00, // NLMSGERR_ATTR_OFFS = 40
        ]
        let messages = raw.withUnsafeBytes { ReceivedMessage.split($0) }
        try #require(messages.count == 1)
        let msg = messages[0]
        #expect(msg.type == UInt16(NLMSG_ERROR))
        #expect(msg.sequence == 7)
        #expect(msg.portID == 1234)
        let status = NetlinkSocket.decodeStatus(msg, isDone: false)
        #expect(status.code == -17)
        #expect(status.message == "Unknown device type")
        #expect(status.offset == 40)

        let error = NetlinkError(context: RequestContext("create link", "acme-web0"), errno: .fileExists,
                                 kernelMessage: status.message)
        #expect(error.description == "create link acme-web0: File exists (EEXIST); kernel says: Unknown device type")
    }

    @Test func decodesUncappedErrorWithEchoedRequest() {
        // Without NETLINK_CAP_ACK the whole request follows the error; TLVs come after it.
        let echoed: [UInt8] = [0x14, 0x00, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0,
                               0xAA, 0xBB, 0xCC, 0xDD] // a 20-byte request
        let tlv: [UInt8] = [0x08, 0x00, 0x01, 0x00] + Array("bad".utf8) + [0]
        let payload: [UInt8] = [0xea, 0xff, 0xff, 0xff] + echoed + tlv // -22 EINVAL
        let msg = ReceivedMessage(type: UInt16(NLMSG_ERROR), flags: UInt16(NLM_F_ACK_TLVS), sequence: 1, portID: 0, payload: payload)
        let status = NetlinkSocket.decodeStatus(msg, isDone: false)
        #expect(status.code == -22)
        #expect(status.message == "bad")
    }

    @Test func splitsMultipartDump() throws {
        // Two RTM_NEWLINK parts of a dump and the closing NLMSG_DONE, as one datagram.
        func part(index: UInt8, name: String) -> [UInt8] {
            var name0 = Array(name.utf8) + [0]
            while name0.count % 4 != 0 { name0.append(0) }
            let attr: [UInt8] = [UInt8(4 + name.utf8.count + 1), 0x00, 0x03, 0x00] + name0 // IFLA_IFNAME
            let mtu: [UInt8] = [0x08, 0x00, 0x04, 0x00, 0xdc, 0x05, 0x00, 0x00]            // IFLA_MTU 1500
            let ifi: [UInt8] = [0x00, 0x00, 0x01, 0x00, index, 0, 0, 0, 0x41, 0x10, 0, 0, 0, 0, 0, 0] // AF_UNSPEC, ARPHRD_ETHER, index, flags UP|RUNNING
            let len = 16 + ifi.count + attr.count + mtu.count
            return [UInt8(len), 0, 0, 0, 0x10, 0x00, 0x02, 0x00, 0x09, 0, 0, 0, 0x01, 0, 0, 0] + ifi + attr + mtu // NLM_F_MULTI
        }
        let done: [UInt8] = [0x14, 0, 0, 0, 0x03, 0x00, 0x02, 0x00, 0x09, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0]
        let raw = part(index: 1, name: "br0") + part(index: 2, name: "veth-long0") + done
        let messages = raw.withUnsafeBytes { ReceivedMessage.split($0) }
        #expect(messages.map(\.type) == [16, 16, 3])
        #expect(messages.allSatisfy { $0.flags & UInt16(NLM_F_MULTI) != 0 })
        let second = messages[1].attributes(after: ifinfomsg.self)
        #expect(second.string(IFLA_IFNAME) == "veth-long0")
        #expect(second.u32(IFLA_MTU) == 1500)
        #expect(try messages[1].header(as: ifinfomsg.self).ifi_index == 2)
        #expect(NetlinkSocket.decodeStatus(messages[2], isDone: true).code == 0)
    }
}
