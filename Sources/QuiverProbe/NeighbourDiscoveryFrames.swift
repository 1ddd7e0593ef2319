import QuiverKernel

/// IPv6 neighbour discovery and other ICMPv6 frames, built byte by byte with their checksums —
/// honest ones and forged ones, for protection tests. A message has no room for a marker (its
/// length is part of what is checked, and the fabric trims bytes after the IPv6 payload), so a
/// test tells its own frames apart by `flowLabel`: ``ipv6Header(of:)`` of the frame it sent is the
/// marker to look for.
extension Frames {
    /// The IPv6 header of an IPv6 frame (flow label, length, addresses): a marker for ``PacketSocket/count(containing:expected:quietSeconds:)``.
    public static func ipv6Header(of frame: [UInt8]) -> [UInt8] { Array(frame[14..<54]) }

    /// A random flow label (20 bits, never 0).
    public static func flowLabel() -> UInt32 { UInt32.random(in: 1...0xFFFFF) }

    static func ipv6(_ payloadLength: Int, next: UInt8, hopLimit: UInt8, flowLabel: UInt32, _ src: IPAddress, _ dst: IPAddress) -> [UInt8] {
        [0x60, UInt8((flowLabel >> 16) & 0x0F), UInt8((flowLabel >> 8) & 0xFF), UInt8(flowLabel & 0xFF),
         UInt8(payloadLength >> 8), UInt8(payloadLength & 0xff), next, hopLimit] + src.bytes + dst.bytes
    }

    /// `ff02::group`: all nodes (1), all routers (2), MLDv2-capable routers (0x16).
    public static func linkScopeMulticast(_ group: UInt8) -> IPAddress {
        .v6([0xFF, 0x02] + [UInt8](repeating: 0, count: 13) + [group])
    }

    /// The solicited-node multicast address of `a` (`ff02::1:ffXX:XXXX`).
    public static func solicitedNode(_ a: IPAddress) -> IPAddress {
        let b = a.bytes
        return .v6([0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, b[13], b[14], b[15]])
    }

    /// The Ethernet multicast address of an IPv6 multicast address (`33:33:` + its last 4 bytes).
    public static func multicastMAC(_ a: IPAddress) -> MACAddress {
        let b = a.bytes
        return MACAddress(0x33, 0x33, b[12], b[13], b[14], b[15])
    }

    /// ICMPv6 `type`/`code` with `body` after the 4-byte header, in IPv6 with hop limit 255.
    public static func icmp6(dstMAC: MACAddress, srcMAC: MACAddress, src: IPAddress, dst: IPAddress, type: UInt8, code: UInt8 = 0,
                             _ body: [UInt8], flowLabel: UInt32 = 0) -> [UInt8] {
        var icmp: [UInt8] = [type, code, 0, 0] + body
        // Checksum over the pseudo-header: source, destination, length, next header 58.
        let len = icmp.count
        let pseudo = src.bytes + dst.bytes + [0, 0, UInt8(len >> 8), UInt8(len & 0xff), 0, 0, 0, 58]
        let c = checksum(pseudo + icmp)
        icmp[2] = UInt8(c >> 8)
        icmp[3] = UInt8(c & 0xff)
        return ethernet(dst: dstMAC, src: srcMAC, type: 0x86DD, ipv6(len, next: 58, hopLimit: 255, flowLabel: flowLabel, src, dst) + icmp)
    }

    /// A link-layer address option: type 1 (source) or 2 (target), one 8-byte unit.
    public static func linkLayerOption(_ type: UInt8, _ mac: MACAddress) -> [UInt8] { [type, 1] + mac.bytes }

    /// A nonce option (RFC 7527), as Linux puts in duplicate address detection.
    public static func nonceOption() -> [UInt8] { [14, 1] + (0..<6).map { _ in UInt8.random(in: 0...255) } }

    /// A neighbour solicitation for `target` with `options` (e.g. a source link-layer address).
    public static func neighbourSolicitation(dstMAC: MACAddress, srcMAC: MACAddress, src: IPAddress, dst: IPAddress, target: IPAddress,
                                             options: [UInt8], flowLabel: UInt32 = 0) -> [UInt8] {
        icmp6(dstMAC: dstMAC, srcMAC: srcMAC, src: src, dst: dst, type: 135, [0, 0, 0, 0] + target.bytes + options, flowLabel: flowLabel)
    }

    /// A neighbour advertisement for `target` (solicited and override flags set) with `options`.
    public static func neighbourAdvertisement(dstMAC: MACAddress, srcMAC: MACAddress, src: IPAddress, dst: IPAddress, target: IPAddress,
                                              options: [UInt8], flowLabel: UInt32 = 0) -> [UInt8] {
        icmp6(dstMAC: dstMAC, srcMAC: srcMAC, src: src, dst: dst, type: 136, [0x60, 0, 0, 0] + target.bytes + options, flowLabel: flowLabel)
    }

    /// A router solicitation with `options`.
    public static func routerSolicitation(dstMAC: MACAddress, srcMAC: MACAddress, src: IPAddress, options: [UInt8], flowLabel: UInt32 = 0) -> [UInt8] {
        icmp6(dstMAC: dstMAC, srcMAC: srcMAC, src: src, dst: linkScopeMulticast(2), type: 133, [0, 0, 0, 0] + options, flowLabel: flowLabel)
    }

    /// A router advertisement (hop limit 64, lifetime 1800 s) with `options`.
    public static func routerAdvertisement(dstMAC: MACAddress, srcMAC: MACAddress, src: IPAddress, options: [UInt8], flowLabel: UInt32 = 0) -> [UInt8] {
        icmp6(dstMAC: dstMAC, srcMAC: srcMAC, src: src, dst: linkScopeMulticast(1), type: 134,
              [64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0] + options, flowLabel: flowLabel)
    }

    /// A prefix information option for `prefix`/64 (on-link, autonomous).
    public static func prefixOption(_ prefix: IPAddress) -> [UInt8] {
        [3, 4, 64, 0xC0, 0, 0, 0x0E, 0x10, 0, 0, 0x07, 0x08, 0, 0, 0, 0] + prefix.bytes
    }

    /// A redirect: `target` is a better first hop for `destination`.
    public static func redirect(dstMAC: MACAddress, srcMAC: MACAddress, src: IPAddress, dst: IPAddress, target: IPAddress, destination: IPAddress,
                                options: [UInt8], flowLabel: UInt32 = 0) -> [UInt8] {
        icmp6(dstMAC: dstMAC, srcMAC: srcMAC, src: src, dst: dst, type: 137, [0, 0, 0, 0] + target.bytes + destination.bytes + options, flowLabel: flowLabel)
    }

    /// An MLDv2 report (type 143) with no records, in IPv6 with a hop-by-hop router alert, to
    /// `ff02::16` (Ethernet: its multicast address unless `dstMAC` says otherwise).
    public static func mldv2Report(dstMAC: MACAddress? = nil, srcMAC: MACAddress, src: IPAddress, flowLabel: UInt32 = 0) -> [UInt8] {
        let dst = linkScopeMulticast(0x16)
        var icmp: [UInt8] = [143, 0, 0, 0, 0, 0, 0, 0]
        let pseudo = src.bytes + dst.bytes + [0, 0, 0, UInt8(icmp.count), 0, 0, 0, 58]
        let c = checksum(pseudo + icmp)
        icmp[2] = UInt8(c >> 8)
        icmp[3] = UInt8(c & 0xff)
        // Hop-by-hop: next header 58, length 0 (8 bytes), router alert (5, 2, 0 = MLD), PadN.
        let hbh: [UInt8] = [58, 0, 5, 2, 0, 0, 1, 0]
        let payload = hbh + icmp
        return ethernet(dst: dstMAC ?? multicastMAC(dst), src: srcMAC, type: 0x86DD,
                        ipv6(payload.count, next: 0, hopLimit: 1, flowLabel: flowLabel, src, dst) + payload)
    }
}
