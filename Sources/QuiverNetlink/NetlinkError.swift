import Glibc
import SystemPackage

/// What a request was for, so an error can name it ("create link acme-web0") and say what it
/// means: the same whichever way the request is sent.
public struct RequestContext: Sendable, Equatable, CustomStringConvertible {
    public var operation: String
    public var object: String?
    /// What kind of kernel object `object` names.
    public var subject: Subject

    /// The kinds of object whose errors have a meaning of their own.
    public enum Subject: Sendable, Equatable {
        /// A network device: `EEXIST` means the name is taken, `ENODEV` that there is none.
        case link
        case other
    }

    public init(_ operation: String, _ object: String? = nil, subject: Subject = .other) {
        self.operation = operation
        self.object = object
        self.subject = subject
    }

    public var description: String { object.map { "\(operation) \($0)" } ?? operation }
}

/// The kernel refused a request: `NLMSG_ERROR` with a negative error, decoded with its extended
/// ACK (message and offending attribute offset) when the kernel sent one.
public struct NetlinkError: Error, Sendable, Equatable, CustomStringConvertible {
    public var context: RequestContext
    public var errno: Errno
    /// `NLMSGERR_ATTR_MSG`: the kernel's own explanation, e.g. "Unknown device type".
    public var kernelMessage: String?
    /// `NLMSGERR_ATTR_OFFS`: byte offset of the offending attribute in the request.
    public var attributeOffset: UInt32?
    /// Extra advice from the layer that gave the error meaning.
    public var hint: String?

    public init(context: RequestContext, errno: Errno, kernelMessage: String? = nil,
                attributeOffset: UInt32? = nil, hint: String? = nil) {
        self.context = context
        self.errno = errno
        self.kernelMessage = kernelMessage
        self.attributeOffset = attributeOffset
        self.hint = hint
    }

    public var description: String {
        var s = "\(context): \(errno.symbolicDescription)"
        if let m = kernelMessage, !m.isEmpty { s += "; kernel says: \(m)" }
        if let h = hint { s += "; \(h)" }
        return s
    }
}

/// A system call failed (socket, setns, mount, ioctl ...).
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    public var call: String
    public var object: String?
    public var errno: Errno

    public init(_ call: String, _ object: String? = nil, errno: Errno) {
        self.call = call
        self.object = object
        self.errno = errno
    }

    public var description: String {
        "\(call)\(object.map { " \($0)" } ?? ""): \(errno.symbolicDescription)"
    }
}

/// The kernel sent something this decoder cannot make sense of.
public struct NetlinkProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "netlink protocol error: \(message)" }
}

extension Errno {
    /// ENODEV, the answer for a link that does not exist (swift-system names it after the
    /// BSD text, `operationNotSupportedByDevice`).
    public static var noSuchDevice: Errno { Errno(rawValue: 19) }
    /// "File exists (EEXIST)".
    public var symbolicDescription: String {
        if let name = Errno.names[rawValue] { return "\(description) (\(name))" }
        return "\(description) (errno \(rawValue))"
    }

    private static let names: [CInt: String] = [
        1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 9: "EBADF",
        11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV", 20: "ENOTDIR",
        21: "EISDIR", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 28: "ENOSPC", 34: "ERANGE",
        36: "ENAMETOOLONG", 38: "ENOSYS", 39: "ENOTEMPTY", 61: "ENODATA", 71: "EPROTO", 75: "EOVERFLOW",
        90: "EMSGSIZE", 93: "EPROTONOSUPPORT", 95: "EOPNOTSUPP", 97: "EAFNOSUPPORT", 98: "EADDRINUSE",
        99: "EADDRNOTAVAIL", 100: "ENETDOWN", 101: "ENETUNREACH", 105: "ENOBUFS", 110: "ETIMEDOUT",
        111: "ECONNREFUSED", 113: "EHOSTUNREACH", 524: "ENOTSUPP",
    ]
}
