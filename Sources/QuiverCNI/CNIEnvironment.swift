import Foundation
import QuiverValues

/// The CNI_* environment variables of one call, validated once (SPEC.md, "Parameters").
public struct CNIEnvironment: Sendable, Equatable {
    public enum Command: String, Sendable, CaseIterable { case add = "ADD", del = "DEL", check = "CHECK", status = "STATUS", version = "VERSION", gc = "GC" }

    public var command: Command
    /// Needed by ADD, DEL, CHECK: letters, digits, `_`, `.`, `-`, starting with a letter or digit.
    public var containerID: String?
    /// The container's network namespace file; DEL works without it.
    public var netns: String?
    public var ifname: InterfaceName?

    public init(command: Command, containerID: String? = nil, netns: String? = nil, ifname: InterfaceName? = nil) {
        self.command = command
        self.containerID = containerID
        self.netns = netns
        self.ifname = ifname
    }

    /// Reads and checks `env`; what a command needs and lacks is an error 4 naming the variable.
    public init(_ env: [String: String]) throws(CNIError) {
        guard let raw = env["CNI_COMMAND"], !raw.isEmpty else {
            throw CNIError(.invalidEnvironment, "CNI_COMMAND is not set", details: "set it to one of \(Command.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let c = Command(rawValue: raw) else {
            throw CNIError(.invalidEnvironment, "CNI_COMMAND \(InvalidValue.quoted(raw)) is not a CNI command",
                           details: "one of \(Command.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        command = c
        let attachment = [.add, .del, .check].contains(c)
        // VERSION, STATUS and GC name no attachment: what a runtime puts in the other variables
        // then is not read (libcni's version probe sets them all to "dummy").
        guard attachment else { return }
        if let id = env["CNI_CONTAINERID"], !id.isEmpty {
            guard Self.validContainerID(id) else {
                throw CNIError(.invalidEnvironment, "CNI_CONTAINERID \(InvalidValue.quoted(id, limit: 80)) is not a container id",
                               details: "letters, digits, '_', '.' and '-', starting with a letter or digit, at most 256 characters")
            }
            containerID = id
        } else if attachment {
            throw CNIError(.invalidEnvironment, "CNI_CONTAINERID is not set", details: "\(c.rawValue) needs the container's id")
        }
        if let n = env["CNI_NETNS"], !n.isEmpty {
            guard n.hasPrefix("/"), n.utf8.count <= 4096, !n.utf8.contains(0) else {
                throw CNIError(.invalidEnvironment, "CNI_NETNS \(InvalidValue.quoted(n, limit: 80)) is not an absolute path")
            }
            netns = n
        } else if c == .add || c == .check {
            throw CNIError(.invalidEnvironment, "CNI_NETNS is not set", details: "\(c.rawValue) needs the container's network namespace")
        }
        if let i = env["CNI_IFNAME"], !i.isEmpty {
            do { ifname = try InterfaceName(validating: i) } catch {
                throw CNIError(.invalidEnvironment, "CNI_IFNAME: \(error)")
            }
        } else if attachment {
            throw CNIError(.invalidEnvironment, "CNI_IFNAME is not set", details: "\(c.rawValue) needs the container's interface name")
        }
    }

    static func validContainerID(_ s: String) -> Bool {
        func alnum(_ c: Unicode.Scalar) -> Bool { ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) }
        guard let first = s.unicodeScalars.first, alnum(first), s.utf8.count <= 256 else { return false }
        return s.unicodeScalars.allSatisfy { alnum($0) || "_.-".unicodeScalars.contains($0) }
    }
}
