import QuiverBandwidth
import QuiverKernel

/// Where something was written in a topology file, for messages: `file:line:column`.
public struct SourceLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A validated topology: what `quiver apply` makes the host match.
public struct Topology: Sendable, Equatable {
    public var name: String
    public var switches: [Switch]
    public var tenants: [Tenant]
    public var expectations: [Expectation]
    public var file: String

    public struct Switch: Sendable, Equatable {
        public var name: String
        public var mtu: UInt32?
        public var location: SourceLocation
    }

    public struct Tenant: Sendable, Equatable {
        public var name: String
        public var maxbw: Bitrate?
        public var hosts: [Host]
        public var location: SourceLocation
    }

    public enum HostKind: String, Sendable, Equatable, CaseIterable {
        case netns
        case vm
    }

    public struct Host: Sendable, Equatable {
        public var name: String
        public var kind: HostKind
        public var vnics: [VNIC]
        public var location: SourceLocation
    }

    public enum MACSetting: Sendable, Equatable {
        /// Derived from the topology, tenant, host and VNIC names: stable across applies.
        case auto
        /// Random once, then kept (read back from the kernel on re-apply).
        case random
        case fixed(MACAddress)
    }

    public enum Protection: String, Sendable, Equatable, CaseIterable, Codable {
        case macNospoof = "mac-nospoof"
        case ipNospoof = "ip-nospoof"
        case restricted
        case dhcpNospoof = "dhcp-nospoof"
    }

    public struct VNIC: Sendable, Equatable {
        public var name: String
        public var over: String
        public var mac: MACSetting
        public var ips: [IPPrefix]
        public var gateway: IPAddress?
        public var mtu: UInt32?
        public var maxbw: Bitrate?
        public var floor: Bitrate?
        /// Overrides of the computed bucket and queue sizes, bytes.
        public var burst: UInt32?
        public var queue: UInt32?
        public var protection: [Protection]
        public var allowedIPs: [IPPrefix]
        public var flows: [FlowCap]
        public var location: SourceLocation
    }

    /// An `expect:` entry, kept as written until the verify command interprets it.
    public struct Expectation: Sendable, Equatable {
        public var kind: String
        public var fields: [String: String]
        public var location: SourceLocation
    }
}

/// An error in a topology file, with where it is and what to do.
public struct TopologyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var location: SourceLocation?
    public var message: String
    public var hint: String?

    public init(_ location: SourceLocation?, _ message: String, hint: String? = nil) {
        self.location = location
        self.message = message
        self.hint = hint
    }

    public var description: String {
        (location.map { "\($0): " } ?? "") + "error: " + message + (hint.map { " (\($0))" } ?? "")
    }
}

/// Every error found in a file (validation reports all at once).
public struct TopologyErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [TopologyError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
