import Foundation
import Glibc
import QuiverKernel
import QuiverNetlink
import SystemPackage

/// A static lease: the MAC a guest's NIC has, the address and gateway the file gives it.
public struct DHCPLease: Sendable, Codable, Equatable {
    public var mac: MACAddress
    public var address: IPPrefix
    public var gateway: IPAddress?

    public init(mac: MACAddress, address: IPPrefix, gateway: IPAddress?) {
        self.mac = mac
        self.address = address
        self.gateway = gateway
    }
}

/// One tenant's DHCPv4 server on one switch: dnsmasq (from `dnsmasq-base`) in a namespace of
/// the tenant's that Quiver owns, answering only the leases' MACs (`dhcp-ignore=tag:!known`),
/// each with exactly its address and gateway, and no DNS (`port=0`). It runs in the
/// foreground of a session of its own, started by Quiver with its configuration on descriptor 3
/// (`--conf-file=/proc/self/fd/3`), drops to `nobody` once its socket is bound, writes its log
/// to `dnsmasq.log` and no lease file. Its run directory, `/run/quiver/dhcp/T/N-S`, holds the
/// configuration it was started with, its pid and its log.
public struct DHCPServer: Sendable, Codable, Equatable {
    public var label: String
    /// The tenant's namespace the server runs in, and its endpoint there.
    public var namespace: String
    public var device: String
    /// The server's own addresses on `device`, one per subnet it serves.
    public var addresses: [IPPrefix]
    public var leases: [DHCPLease]
    public var directory: String

    public init(label: String, namespace: String, device: String, addresses: [IPPrefix], leases: [DHCPLease], directory: String) {
        self.label = label
        self.namespace = namespace
        self.device = device
        self.addresses = addresses
        self.leases = leases
        self.directory = directory
    }

    public static let root = TrustedDirectory.runRoot + "/dhcp"

    /// `/run/quiver/dhcp/T/N-S` (names from a file have no `-` or `/`).
    public static func directory(topology: TopologyName, tenant: String, switchName: String) -> String {
        "\(root)/\(topology.rawValue)/\(tenant)-\(switchName)"
    }

    /// dnsmasq's configuration. Every value in it is one Quiver made from validated values (MACs,
    /// addresses, an interface name, tag names of its own), so none can start another option.
    public var config: String {
        var lines = ["# \(label): made by Quiver; static leases only, no DNS",
                     "port=0", "interface=\(device)", "bind-interfaces", "no-resolv", "no-hosts", "leasefile-ro",
                     "dhcp-authoritative", "dhcp-ignore=tag:!known", "log-dhcp", "log-facility=-", "user=nobody", "group=nogroup"]
        for (i, a) in addresses.enumerated() {
            lines.append("dhcp-range=set:net\(i),\(a.network.address),static,\(Self.netmask(a.length)),infinite")
        }
        for (i, l) in leases.enumerated() {
            lines.append("dhcp-host=\(l.mac),set:lease\(i),\(l.address.address),infinite")
            // Without a gateway in the file, no router option at all (dnsmasq would offer itself).
            lines.append("dhcp-option=tag:lease\(i),option:router" + (l.gateway.map { ",\($0)" } ?? ""))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func netmask(_ length: Int) -> String {
        let m: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
        return "\(m >> 24).\(m >> 16 & 0xFF).\(m >> 8 & 0xFF).\(m & 0xFF)"
    }

    public enum Entry: String, CaseIterable {
        case config = "dnsmasq.conf", pid = "dnsmasq.pid", log = "dnsmasq.log"
    }

    /// Starts dnsmasq in `namespace` (its endpoint must be up with its addresses) and records it.
    @discardableResult
    public func start(binary: String = "dnsmasq") throws -> pid_t {
        guard let dir = try TrustedDirectory.open(directory, create: true) else { throw VMError("\(directory) cannot be made") }
        try dir.write(Entry.config.rawValue, Data(config.utf8))
        guard let conf = try dir.openExisting(Entry.config.rawValue, writable: false) else { throw VMError("\(directory)/dnsmasq.conf vanished") }
        defer { try? conf.close() }
        let log = try dir.create(Entry.log.rawValue)
        defer { try? log.close() }
        let argv = [binary, "--keep-in-foreground", "--conf-file=/proc/self/fd/3"]
        let pid: pid_t
        do {
            pid = try NetworkNamespace.named(namespace).run { try Spawn.start(argv, descriptors: [conf.rawValue], output: log.rawValue) }
        } catch let e as SpawnError where e.errno == ENOENT {
            throw VMError("dnsmasq is not installed (apt install dnsmasq-base)")
        }
        try dir.write(Entry.pid.rawValue, Data("\(pid)\n".utf8))
        // dnsmasq checks its configuration and binds before it serves: a mistake ends it at once.
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            guard VMLauncher.isRunning(pid) else {
                Spawn.reap(pid)
                let said = (try? dir.read(Entry.log.rawValue, limit: 1 << 16)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
                throw VMError("dnsmasq for \(label) exited at once: \(said.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            if said(dir, "sockets bound") { break }
        }
        return pid
    }

    func said(_ dir: TrustedDirectory, _ text: String) -> Bool {
        ((try? dir.read(Entry.log.rawValue, limit: 1 << 20)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? "").contains(text)
    }

    /// A running server's pid and the configuration it was started with, if it is running: the
    /// recorded pid is a dnsmasq with Quiver's command line in `namespace` (not a reused pid).
    public static func running(directory: String, namespace: String) -> (pid: pid_t, config: String)? {
        guard let dir = try? TrustedDirectory.open(directory, create: false),
              let pidText = (try? dir.read(Entry.pid.rawValue, limit: 64)).flatMap({ $0 }),
              let pid = pid_t(String(decoding: pidText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1,
              VMLauncher.isRunning(pid) else { return nil }
        let argv = ((try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard argv.first.map({ ($0 as NSString).lastPathComponent == "dnsmasq" }) == true, argv.contains("--conf-file=/proc/self/fd/3") else { return nil }
        var a = stat(), b = stat()
        guard stat("/proc/\(pid)/ns/net", &a) == 0, stat(NetworkNamespace.named(namespace).path, &b) == 0, a.st_ino == b.st_ino else { return nil }
        let config = (try? dir.read(Entry.config.rawValue, limit: 1 << 20)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
        return (pid, config)
    }

    /// Stops the server recorded in `directory` (SIGTERM, then SIGKILL after 2 s) and removes
    /// the directory's own files. Returns whether one was running.
    @discardableResult
    public static func stop(directory: String, namespace: String) throws -> Bool {
        var was = false
        if let (pid, _) = running(directory: directory, namespace: namespace) {
            was = true
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(2)
            while VMLauncher.isRunning(pid), Date() < deadline { Spawn.reap(pid); Thread.sleep(forTimeInterval: 0.02) }
            if VMLauncher.isRunning(pid) { kill(pid, SIGKILL) }
            Spawn.reap(pid)
        }
        guard let dir = try TrustedDirectory.open(directory, create: false) else { return was }
        for e in Entry.allCases { try dir.remove(e.rawValue) }
        let parent = (directory as NSString).deletingLastPathComponent
        if let up = try TrustedDirectory.open(parent, create: false) {
            try up.removeDirectory((directory as NSString).lastPathComponent)
            if (try? up.entries())?.isEmpty == true { _ = try? TrustedDirectory.open(root, create: false)?.removeDirectory((parent as NSString).lastPathComponent) }
        }
        return was
    }

    /// The namespace of the server whose directory is `…/T/N-S`: `T-N-dhcp-S` (names in a file
    /// have no `-`, so the split is unambiguous).
    public static func namespace(ofDirectory directory: String, topology: String) -> String? {
        let last = (directory as NSString).lastPathComponent
        guard let dash = last.firstIndex(of: "-") else { return nil }
        return "\(topology)-\(last[..<dash])-dhcp-\(last[last.index(after: dash)...])"
    }

    /// The server directories of `topology` (`N-S`), whatever the file says now.
    public static func directories(topology: TopologyName) -> [String] {
        guard let dir = try? TrustedDirectory.open("\(root)/\(topology.rawValue)", create: false) else { return [] }
        return ((try? dir.entries()) ?? []).filter { !$0.hasPrefix(".") }.map { "\(root)/\(topology.rawValue)/\($0)" }
    }
}
