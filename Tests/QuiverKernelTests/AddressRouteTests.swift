import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink
import Testing

/// Privileged: addresses and routes in a scratch namespace; witness `ip -j addr/route`.
@Suite struct AddressRouteTests {
    @Test func addressesBothFamilies() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("a0", Veth(peer: "a0p"), LinkSettings(up: true))
            let v4 = try IPPrefix("10.77.0.11/24")
            let v6 = try IPPrefix("fd77::11/64")
            try h.addAddress(v4, to: "a0")
            try h.addAddress(v6, to: "a0")
            let got = try h.addresses(of: "a0").map(\.prefix)
            #expect(got.contains(v4))
            #expect(got.contains(v6))

            let w = try witness(["ip", "-n", ns.name!, "-j", "addr", "show", "dev", "a0"]) as? [[String: Any]]
            let infos = (w?.first?["addr_info"] as? [[String: Any]]) ?? []
            let seen = Set(infos.compactMap { i -> String? in
                guard let l = i["local"] as? String, let p = i["prefixlen"] as? Int else { return nil }
                return "\(l)/\(p)"
            })
            #expect(seen.isSuperset(of: ["10.77.0.11/24", "fd77::11/64"]))

            let dup = #expect(throws: NetlinkError.self) { try h.addAddress(v4, to: "a0") }
            #expect(dup?.errno == .fileExists)
            #expect(dup?.description.contains("already on a0") == true)

            try h.deleteAddress(v4, from: "a0")
            try h.deleteAddress(v6, from: "a0")
            #expect(try h.addresses(of: "a0").filter { $0.prefix == v4 || $0.prefix == v6 }.isEmpty)
            let gone = #expect(throws: NetlinkError.self) { try h.deleteAddress(v4, from: "a0") }
            #expect(gone?.errno == .addressNotAvailable)
        }
    }

    /// A namespace that never had a route has no IPv4 main table; its routes are none, not an
    /// error (an apply killed before a host's `lo` came up leaves such a namespace).
    @Test func routesOfANamespaceWithoutAnyTable() throws {
        try withScratchNamespace { ns, h in
            let v4 = try h.routes(family: AF_INET)
            let all = try h.routes()
            #expect(v4.isEmpty)
            #expect(all.allSatisfy { $0.family == AF_INET6 })
        }
    }

    @Test func defaultAndPrefixRoutes() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("r0", Veth(peer: "r0p"), LinkSettings(up: true))
            try h.setLink("r0p", LinkSettings(up: true))
            try h.addAddress(try IPPrefix("10.78.0.2/24"), to: "r0")
            try h.addAddress(try IPPrefix("fd78::2/64"), to: "r0")
            let index = try h.link(named: "r0").index

            let def4 = Route(destination: nil, gateway: try IPAddress("10.78.0.1"))
            let net4 = Route(destination: try IPPrefix("10.99.0.0/16"), outputIndex: index)
            let def6 = Route(destination: nil, gateway: try IPAddress("fd78::1"), family: AF_INET6)
            try h.addRoute(def4)
            try h.addRoute(net4)
            try h.addRoute(def6)

            let routes = try h.routes()
            #expect(routes.contains { $0.destination == nil && $0.gateway == def4.gateway })
            #expect(routes.contains { $0.destination == net4.destination && $0.outputIndex == index })
            #expect(routes.contains { $0.destination == nil && $0.gateway == def6.gateway })

            let w4 = try witness(["ip", "-n", ns.name!, "-j", "route", "show"]) as? [[String: Any]] ?? []
            #expect(w4.contains { $0["dst"] as? String == "default" && $0["gateway"] as? String == "10.78.0.1" })
            #expect(w4.contains { $0["dst"] as? String == "10.99.0.0/16" && $0["dev"] as? String == "r0" })
            let w6 = try witness(["ip", "-n", ns.name!, "-6", "-j", "route", "show"]) as? [[String: Any]] ?? []
            #expect(w6.contains { $0["dst"] as? String == "default" && $0["gateway"] as? String == "fd78::1" })

            let dup = #expect(throws: NetlinkError.self) { try h.addRoute(def4) }
            #expect(dup?.errno == .fileExists)

            try h.deleteRoute(def4)
            try h.deleteRoute(net4)
            try h.deleteRoute(def6)
            let after = try h.routes()
            #expect(!after.contains { $0.destination == nil })
            #expect(!after.contains { $0.destination == net4.destination })
        }
    }
}

/// Namespace handles: by name, by descriptor path, by pid; used from many threads.
@Suite struct NamespaceHandleTests {
    @Test func handleByDescriptorSeesTheSameNamespace() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("nsfd0", Bridge())
            let fd = try ns.open()
            defer { try? fd.close() }
            let byFD = try NetlinkHandle(namespace: NetworkNamespace(path: "/proc/\(getpid())/fd/\(fd.rawValue)"))
            #expect(try byFD.link(named: "nsfd0").kind == "bridge")
        }
    }

    @Test func handleByPidIsThatProcessNamespace() throws {
        let host = try NetlinkHandle()
        let byPid = try NetlinkHandle(namespace: .process(getpid()))
        #expect(try host.links().map(\.name).sorted() == byPid.links().map(\.name).sorted())
    }

    @Test func oneHandleFromManyThreads() throws {
        try withScratchNamespace { _, h in
            let errors = ErrorBox()
            DispatchQueue.concurrentPerform(iterations: 16) { i in
                do { try h.addLink(try InterfaceName(validating: "mt\(i)"), Bridge()) } catch { errors.append(error) }
            }
            #expect(errors.all.isEmpty, "\(errors.all)")
            let made = try h.links().filter { $0.name.hasPrefix("mt") }
            #expect(made.count == 16)
        }
    }

    @Test func namedNamespaceLifecycle() throws {
        let name = "qt-life-\(getpid())"
        let ns = try NetworkNamespace.create(named: name)
        #expect(NetworkNamespace.listNamed().contains(name))
        let w = try witness(["ip", "-j", "netns", "list"]) as? [[String: Any]] ?? []
        #expect(w.contains { $0["name"] as? String == name })
        let dup = #expect(throws: SystemCallError.self) { try NetworkNamespace.create(named: name) }
        #expect(dup?.errno == .fileExists)
        // A new namespace has only a loopback, down.
        let links = try NetlinkHandle(namespace: ns).links()
        #expect(links.map(\.name) == ["lo"])
        #expect(links.first?.isUp == false)
        try NetworkNamespace.delete(named: name)
        #expect(!NetworkNamespace.listNamed().contains(name))
        #expect(throws: SystemCallError.self) { try NetworkNamespace.delete(named: name) }
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func append(_ e: Error) { lock.lock(); errors.append(e); lock.unlock() }
    var all: [Error] { lock.lock(); defer { lock.unlock() }; return errors }
}
