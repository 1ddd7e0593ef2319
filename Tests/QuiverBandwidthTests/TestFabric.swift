import Foundation
import QuiverKernel
import QuiverNetlink
import Testing

/// A small fabric the test owns: a "fabric" namespace holding a bridge and the host-side ends,
/// and one namespace per endpoint with `eth0` (MAC 02:00:00:00:00:0N, 10.55.0.(10+N)/24).
/// Everything goes away with the namespaces; `tearDown` checks nothing is left.
final class TestFabric {
    struct Endpoint {
        var ns: NetworkNamespace
        var handle: NetlinkHandle
        var hostDevice: InterfaceName
        var mac: MACAddress
        var ip: IPAddress
    }

    let id = String(UUID().uuidString.prefix(6)).lowercased()
    let fabric: NetworkNamespace
    let handle: NetlinkHandle
    var endpoints: [Endpoint] = []

    init(endpoints n: Int) throws {
        fabric = try NetworkNamespace.create(named: "qb-\(id)")
        handle = try NetlinkHandle(namespace: fabric)
        try handle.addLink("br0", Bridge(stp: false), LinkSettings(up: true))
        let br = try handle.link(named: "br0").index
        for i in 1...n {
            let ns = try NetworkNamespace.create(named: "qb-\(id)-e\(i)")
            let fd = try ns.open()
            defer { try? fd.close() }
            let host = try InterfaceName(validating: "e\(i)h")
            let mac = try MACAddress(String(format: "02:00:00:00:00:%02x", i))
            let veth = Veth(peer: "eth0", peerSettings: LinkSettings(up: true, mac: mac, namespace: .fd(fd.rawValue)))
            try handle.addLink(host, veth, LinkSettings(up: true, masterIndex: br))
            let h = try NetlinkHandle(namespace: ns)
            try h.perform(veth.peerFollowUp!)
            try h.setLink("lo", LinkSettings(up: true))
            let ip = try IPAddress("10.55.0.\(10 + i)")
            try h.addAddress(try IPPrefix(address: ip, length: 24), to: "eth0")
            endpoints.append(Endpoint(ns: ns, handle: h, hostDevice: host, mac: mac, ip: ip))
        }
        // Let the bridge ports finish coming up.
        try waitUntil(seconds: 3) { try self.handle.links().filter { $0.name.hasSuffix("h") }.allSatisfy { $0.operState == .up } }
    }

    func tearDown() {
        let names = ["qb-\(id)"] + endpoints.map { $0.ns.name! }
        for n in names {
            do { try NetworkNamespace.delete(named: n) } catch { Issue.record("deleting \(n): \(error)") }
        }
        let left = NetworkNamespace.listNamed().filter { $0.hasPrefix("qb-\(id)") }
        #expect(left.isEmpty, "namespaces left: \(left)")
    }
}

func waitUntil(seconds: Double, _ condition: () throws -> Bool) throws {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try condition() { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
}

func withFabric<T>(endpoints: Int, _ body: (TestFabric) throws -> T) throws -> T {
    let f = try TestFabric(endpoints: endpoints)
    defer { f.tearDown() }
    return try body(f)
}

func mbit(_ bps: Double) -> String { String(format: "%.2f Mbit/s", bps / 1e6) }
