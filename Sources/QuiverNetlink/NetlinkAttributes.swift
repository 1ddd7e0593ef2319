import CMnl
import CNetlink

/// A message received from the kernel: header fields plus its payload bytes.
public struct ReceivedMessage: Sendable {
    public let type: UInt16
    public let flags: UInt16
    public let sequence: UInt32
    public let portID: UInt32
    /// Everything after the `nlmsghdr`.
    public let payload: [UInt8]

    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32, payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }

    /// The fixed family header at the start of the payload (`ifinfomsg`, `tcmsg`, ...).
    public func header<H>(as: H.Type) throws(NetlinkProtocolError) -> H {
        guard payload.count >= MemoryLayout<H>.size else {
            throw NetlinkProtocolError("message type \(type) has \(payload.count) bytes, shorter than its \(H.self) header")
        }
        return payload.withUnsafeBytes { $0.loadUnaligned(as: H.self) }
    }

    /// The attributes that follow a family header of `H`.
    public func attributes<H>(after: H.Type) -> NetlinkAttributes {
        NetlinkAttributes(bytes: payload, start: Int(quiver_nlmsg_align(UInt32(MemoryLayout<H>.size))), end: payload.count)
    }

    /// Splits a receive buffer into messages (libmnl's `mnl_nlmsg_ok`/`mnl_nlmsg_next`).
    public static func split(_ buffer: UnsafeRawBufferPointer) -> [ReceivedMessage] {
        var out: [ReceivedMessage] = []
        guard let base = buffer.baseAddress else { return out }
        var nlh = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: nlmsghdr.self))
        var remaining = Int32(buffer.count)
        let hdr = Int(quiver_nlmsg_hdrlen())
        while mnl_nlmsg_ok(nlh, remaining) {
            let len = Int(nlh.pointee.nlmsg_len)
            let body = UnsafeRawBufferPointer(start: UnsafeRawPointer(nlh).advanced(by: hdr), count: len - hdr)
            out.append(ReceivedMessage(type: nlh.pointee.nlmsg_type, flags: nlh.pointee.nlmsg_flags,
                                       sequence: nlh.pointee.nlmsg_seq, portID: nlh.pointee.nlmsg_pid,
                                       payload: Array(body)))
            nlh = mnl_nlmsg_next(nlh, &remaining)!
        }
        return out
    }
}

/// Attributes parsed from a byte range. Each entry is (type, payload range); iteration and
/// alignment are libmnl's (`mnl_attr_ok`, `mnl_attr_next`). Unknown attributes are kept, so a
/// caller can read anything the kernel sent.
public struct NetlinkAttributes: Sendable {
    public let bytes: [UInt8]
    public private(set) var entries: [(type: UInt16, range: Range<Int>)] = []

    public init(bytes: [UInt8], start: Int, end: Int) {
        self.bytes = bytes
        guard start < end else { return }
        // Same tuple labels as `entries`: an unlabelled array would be converted element by
        // element through the runtime's dynamic cast on assignment.
        var found: [(type: UInt16, range: Range<Int>)] = []
        found.reserveCapacity(min(64, max(4, (end - start) / 16)))
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            var attr = UnsafeMutablePointer(mutating: base.advanced(by: start).assumingMemoryBound(to: nlattr.self))
            var remaining = Int32(end - start)
            while mnl_attr_ok(attr, remaining) {
                let payloadStart = UnsafeRawPointer(mnl_attr_get_payload(attr)!) - base
                let payloadLength = Int(mnl_attr_get_payload_len(attr))
                found.append((type: mnl_attr_get_type(attr), range: payloadStart..<(payloadStart + payloadLength)))
                let next = mnl_attr_next(attr)!
                remaining -= Int32(UnsafeRawPointer(next) - UnsafeRawPointer(attr))
                attr = next
            }
        }
        entries = found
    }

    @inlinable public func contains<T: BinaryInteger>(_ type: T) -> Bool { range(type) != nil }

    @inlinable public func range<T: BinaryInteger>(_ type: T) -> Range<Int>? {
        let t = UInt16(type)
        return entries.first(where: { $0.type == t })?.range
    }

    /// All entries of `type` (e.g. repeated `VETH_INFO_PEER` or nested lists).
    @inlinable public func all<T: BinaryInteger>(_ type: T) -> [Range<Int>] {
        let t = UInt16(type)
        return entries.filter { $0.type == t }.map(\.range)
    }

    @inlinable public func payload<T: BinaryInteger>(_ type: T) -> [UInt8]? {
        range(type).map { Array(bytes[$0]) }
    }

    @inlinable func load<T: BinaryInteger, V: FixedWidthInteger>(_ type: T, as: V.Type) -> V? {
        guard let r = range(type), r.count >= MemoryLayout<V>.size else { return nil }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: r.lowerBound, as: V.self) }
    }

    @inlinable public func u8<T: BinaryInteger>(_ type: T) -> UInt8? { load(type, as: UInt8.self) }
    @inlinable public func u16<T: BinaryInteger>(_ type: T) -> UInt16? { load(type, as: UInt16.self) }
    @inlinable public func u32<T: BinaryInteger>(_ type: T) -> UInt32? { load(type, as: UInt32.self) }
    @inlinable public func u64<T: BinaryInteger>(_ type: T) -> UInt64? { load(type, as: UInt64.self) }
    @inlinable public func s32<T: BinaryInteger>(_ type: T) -> Int32? { load(type, as: Int32.self) }
    @inlinable public func be16<T: BinaryInteger>(_ type: T) -> UInt16? { load(type, as: UInt16.self).map { UInt16(bigEndian: $0) } }

    /// A fixed-size struct payload (e.g. `rtnl_link_stats64`); nil when shorter than the struct.
    @inlinable public func value<T: BinaryInteger, V>(_ type: T, as: V.Type) -> V? {
        guard let r = range(type), r.count >= MemoryLayout<V>.size else { return nil }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: r.lowerBound, as: V.self) }
    }

    /// A string payload, without the trailing NUL.
    @inlinable public func string<T: BinaryInteger>(_ type: T) -> String? {
        guard let r = range(type) else { return nil }
        var slice = bytes[r]
        if let nul = slice.firstIndex(of: 0) { slice = slice[slice.startIndex..<nul] }
        return String(decoding: slice, as: UTF8.self)
    }

    /// The attributes nested inside `type`.
    @inlinable public func nested<T: BinaryInteger>(_ type: T) -> NetlinkAttributes? {
        range(type).map { nested(in: $0) }
    }

    /// Attributes nested inside a given payload range (for repeated nests).
    @inlinable public func nested(in range: Range<Int>, skipping header: Int = 0) -> NetlinkAttributes {
        NetlinkAttributes(bytes: bytes, start: range.lowerBound + header, end: range.upperBound)
    }
}
