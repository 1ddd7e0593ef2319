import CMnl
import CNetlink

/// One netlink request being built: the `nlmsghdr`, an optional fixed family header
/// (`ifinfomsg`, `tcmsg`, ...) and attributes.
///
/// All framing and alignment is libmnl's (`mnl_nlmsg_put_header`, `mnl_attr_put`,
/// `mnl_attr_nest_start/end`); this type only makes sure the buffer is large enough before each
/// call and keeps nests as offsets so the buffer may grow in between.
public struct NetlinkMessage: Sendable, Equatable {
    /// The buffer; only the first `length` bytes are the message.
    private var storage: [UInt8]

    /// Creates a message of `type` with `flags` (`NLM_F_REQUEST` is always added).
    public init<T: BinaryInteger, F: BinaryInteger>(type: T, flags: F = 0, sequence: UInt32 = 0) {
        storage = [UInt8](repeating: 0, count: 256)
        storage.withUnsafeMutableBytes { raw in
            let nlh = mnl_nlmsg_put_header(raw.baseAddress)!
            nlh.pointee.nlmsg_type = UInt16(type)
            nlh.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST) | UInt16(flags)
            nlh.pointee.nlmsg_seq = sequence
        }
    }

    /// Total length of the message (`nlmsg_len`).
    public var length: Int {
        storage.withUnsafeBytes { Int($0.load(as: UInt32.self)) }
    }

    /// The message bytes as they go on the wire.
    public var bytes: [UInt8] { Array(storage[0..<length]) }

    public var type: UInt16 {
        storage.withUnsafeBytes { $0.load(fromByteOffset: 4, as: UInt16.self) }
    }

    public var flags: UInt16 {
        get { storage.withUnsafeBytes { $0.load(fromByteOffset: 6, as: UInt16.self) } }
        set { storage.withUnsafeMutableBytes { $0.storeBytes(of: newValue, toByteOffset: 6, as: UInt16.self) } }
    }

    public var sequence: UInt32 {
        get { storage.withUnsafeBytes { $0.load(fromByteOffset: 8, as: UInt32.self) } }
        set { storage.withUnsafeMutableBytes { $0.storeBytes(of: newValue, toByteOffset: 8, as: UInt32.self) } }
    }

    public static func == (a: NetlinkMessage, b: NetlinkMessage) -> Bool { a.bytes == b.bytes }

    // MARK: Building

    private mutating func reserve(_ extra: Int) {
        let needed = length + Int(quiver_nla_align(UInt32(extra))) + Int(quiver_nla_hdrlen())
        if needed > storage.count {
            storage.append(contentsOf: repeatElement(0, count: max(needed, storage.count * 2) - storage.count))
        }
    }

    private mutating func withHeader<R>(_ body: (UnsafeMutablePointer<nlmsghdr>) -> R) -> R {
        storage.withUnsafeMutableBytes { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self))
        }
    }

    /// Appends a fixed family header such as `ifinfomsg` (zero-padded to alignment).
    public mutating func append<H>(header: H) {
        let size = MemoryLayout<H>.size
        reserve(size)
        withHeader { nlh in
            let dst = mnl_nlmsg_put_extra_header(nlh, size)!
            withUnsafeBytes(of: header) { src in dst.copyMemory(from: src.baseAddress!, byteCount: size) }
        }
    }

    /// Appends an attribute whose payload is `payload` bytes.
    public mutating func put<T: BinaryInteger>(_ type: T, bytes payload: UnsafeRawBufferPointer) {
        reserve(payload.count)
        withHeader { nlh in mnl_attr_put(nlh, UInt16(type), payload.count, payload.baseAddress) }
    }

    public mutating func put<T: BinaryInteger>(_ type: T, bytes payload: [UInt8]) {
        payload.withUnsafeBytes { put(type, bytes: $0) }
    }

    /// Appends a fixed-size value in host byte order (structs such as `tc_htb_opt` too).
    public mutating func put<T: BinaryInteger, V>(_ type: T, value: V) {
        withUnsafeBytes(of: value) { put(type, bytes: $0) }
    }

    public mutating func put<T: BinaryInteger>(_ type: T, u8 value: UInt8) { put(type, value: value) }
    public mutating func put<T: BinaryInteger>(_ type: T, u16 value: UInt16) { put(type, value: value) }
    public mutating func put<T: BinaryInteger>(_ type: T, u32 value: UInt32) { put(type, value: value) }
    public mutating func put<T: BinaryInteger>(_ type: T, u64 value: UInt64) { put(type, value: value) }
    public mutating func put<T: BinaryInteger>(_ type: T, s32 value: Int32) { put(type, value: value) }
    /// Network byte order 16-bit value (ports).
    public mutating func put<T: BinaryInteger>(_ type: T, be16 value: UInt16) { put(type, value: value.bigEndian) }
    /// Network byte order 32-bit value.
    public mutating func put<T: BinaryInteger>(_ type: T, be32 value: UInt32) { put(type, value: value.bigEndian) }

    /// A NUL-terminated string attribute.
    public mutating func put<T: BinaryInteger>(_ type: T, string: String) {
        var utf8 = Array(string.utf8)
        utf8.append(0)
        put(type, bytes: utf8)
    }

    /// A flag attribute (no payload).
    public mutating func putFlag<T: BinaryInteger>(_ type: T) {
        put(type, bytes: [])
    }

    /// Appends a nested attribute; `body` fills it.
    public mutating func nest<T: BinaryInteger>(_ type: T, _ body: (inout NetlinkMessage) throws -> Void) rethrows {
        reserve(0)
        let start = length
        withHeader { nlh in _ = mnl_attr_nest_start(nlh, UInt16(type)) }
        try body(&self)
        withHeader { nlh in
            let attr = UnsafeMutableRawPointer(nlh).advanced(by: start).assumingMemoryBound(to: nlattr.self)
            mnl_attr_nest_end(nlh, attr)
        }
    }
}
