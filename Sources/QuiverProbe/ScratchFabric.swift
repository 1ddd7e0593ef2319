import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink

/// A throw-away fabric for tests and benchmarks: a "fabric" namespace holding a bridge `br0` and
/// the host-side ends `eNh`, and one namespace per endpoint with `eth0`
/// (MAC 02:00:00:00:00:NN, address 10.55.0.(10+N)/24, `lo` up). Everything lives in namespaces
/// it created; ``tearDown()`` deletes them, which removes every device.
public final class ScratchFabric: @unchecked Sendable {
    public struct Endpoint: Sendable {
        public var ns: NetworkNamespace
        public var handle: NetlinkHandle
        /// The endpoint's device on the fabric side (what caps attach to).
        public var hostDevice: InterfaceName
        public var mac: MACAddress
        public var ip: IPAddress
    }

    public let id: String
    public let fabric: NetworkNamespace
    public let handle: NetlinkHandle
    public private(set) var endpoints: [Endpoint] = []

    /// Namespace names start with `prefix` and a random id.
    public init(endpoints n: Int, prefix: String = "qs") throws {
        id = prefix + "-" + String(UUID().uuidString.prefix(6)).lowercased()
        fabric = try NetworkNamespace.create(named: id)
        do {
            handle = try NetlinkHandle(namespace: fabric)
        } catch {
            try? NetworkNamespace.delete(named: id)
            throw error
        }
        do {
            try handle.addLink("br0", Bridge(stp: false), LinkSettings(up: true))
            let br = try handle.link(named: "br0").index
            for i in 1...n {
                let ns = try NetworkNamespace.create(named: "\(id)-e\(i)")
                let fd = try ns.open()
                defer { try? fd.close() }
                let host = try InterfaceName(validating: "e\(i)h")
                let mac = try MACAddress(String(format: "02:00:00:00:00:%02x", i))
                let veth = Veth(peer: "eth0", peerSettings: LinkSettings(up: true, mac: mac, namespace: .fd(fd.rawValue)))
                try handle.addLink(host, veth, LinkSettings(up: true, masterIndex: br))
                let h = try NetlinkHandle(namespace: ns)
                if let up = veth.peerFollowUp { try h.perform(up) }
                try h.setLink("lo", LinkSettings(up: true))
                let ip = try IPAddress("10.55.0.\(10 + i)")
                try h.addAddress(try IPPrefix(address: ip, length: 24), to: "eth0")
                endpoints.append(Endpoint(ns: ns, handle: h, hostDevice: host, mac: mac, ip: ip))
            }
            // Bridge ports take a moment to reach forwarding.
            let deadline = Date().addingTimeInterval(3)
            while Date() < deadline {
                if try handle.links().filter({ $0.name.hasSuffix("h") }).allSatisfy({ $0.operState == .up }) { break }
                Thread.sleep(forTimeInterval: 0.05)
            }
        } catch {
            tearDown()
            throw error
        }
    }

    /// Names of every namespace this fabric made.
    public var namespaceNames: [String] {
        NetworkNamespace.listNamed().filter { $0 == id || $0.hasPrefix(id + "-") }
    }

    /// Deletes every namespace it made. Returns the names it could not delete.
    @discardableResult
    public func tearDown() -> [String] { deleteNamespaces(namespaceNames) }
}

/// Deletes each named namespace; returns the names it could not delete.
func deleteNamespaces(_ names: [String]) -> [String] {
    names.filter { n in (try? NetworkNamespace.delete(named: n)) == nil }
}
