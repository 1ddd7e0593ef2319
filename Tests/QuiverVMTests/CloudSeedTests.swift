import Foundation
import QuiverKernel
import QuiverVM
import Testing

/// What a guest's NoCloud seed says: its files read back as cloud-init reads them (JSON is
/// YAML), for 1 and 3 NICs, IPv4 and IPv6, with and without user-data.
@Suite struct CloudSeedTests {
    static func nic(_ i: Int, _ ips: [String], gateway: String? = nil) -> VMNIC {
        VMNIC(tap: "lab-vm-net\(i)", mac: try! MACAddress("02:00:00:00:00:1\(i)"), guestDevice: "net\(i)",
              address: ips.compactMap { try? IPPrefix($0) }.first { $0.address.isV4 }, gateway: gateway.map { try! IPAddress($0) },
              addresses: ips.map { try! IPPrefix($0) })
    }

    static func spec(_ nics: [VMNIC]) -> VMSpec {
        var s = VMSpec(name: "lab-vm", kernel: nil, nics: nics)
        s.image = ImageSpec(path: "/images/base.qcow2")
        return s
    }

    func object(_ d: Data) throws -> [String: Any] { try #require(try JSONSerialization.jsonObject(with: d) as? [String: Any]) }

    @Test func oneNICWithIPv4AndIPv6AndAGateway() throws {
        let nics = [Self.nic(0, ["10.40.0.10/24", "fd40::10/64"], gateway: "10.40.0.1")]
        let seed = CloudSeed(Self.spec(nics), seed: SeedSpec(hostname: "deb"))
        let net = try object(seed.networkConfig)
        #expect(net["version"] as? Int == 2)
        let eth = try #require((net["ethernets"] as? [String: Any])?["net0"] as? [String: Any])
        #expect((eth["match"] as? [String: String]) == ["macaddress": "02:00:00:00:00:10"])
        #expect(eth["set-name"] as? String == "net0")
        #expect(eth["addresses"] as? [String] == ["10.40.0.10/24", "fd40::10/64"])
        #expect(eth["gateway4"] as? String == "10.40.0.1")
        #expect(eth["gateway6"] == nil)
        let meta = try object(seed.metaData)
        #expect(meta["local-hostname"] as? String == "deb")
        #expect((meta["instance-id"] as? String)?.hasPrefix("quiver-lab-vm-") == true)
        // No user-data file: Quiver's own cloud-config, nothing else.
        #expect(String(decoding: seed.userData, as: UTF8.self) == "#cloud-config\n{\n\n}\n")
    }

    @Test func threeNICsEachMatchedByItsMAC() throws {
        let nics = [Self.nic(0, ["10.40.0.10/24"], gateway: "10.40.0.1"), Self.nic(1, ["fd41::5/64"], gateway: "fd41::1"), Self.nic(2, [])]
        let seed = CloudSeed(Self.spec(nics), seed: SeedSpec(hostname: "deb", sshAuthorizedKeys: ["ssh-ed25519 AAAA ops"]))
        let eth = try #require(try object(seed.networkConfig)["ethernets"] as? [String: [String: Any]])
        #expect(Set(eth.keys) == ["net0", "net1", "net2"])
        for (i, n) in nics.enumerated() { #expect((eth["net\(i)"]?["match"] as? [String: String])?["macaddress"] == n.mac.description) }
        #expect(eth["net1"]?["gateway6"] as? String == "fd41::1")
        #expect(eth["net1"]?["addresses"] as? [String] == ["fd41::5/64"])
        // A NIC without addresses is told to take none (no DHCP of its own).
        #expect(eth["net2"]?["dhcp4"] as? Bool == false)
        #expect(eth["net2"]?["addresses"] == nil)
        let config = String(decoding: seed.userData, as: UTF8.self)
        #expect(config.hasPrefix("#cloud-config\n"))
        let body = try object(Data(config.dropFirst("#cloud-config\n".count).utf8))
        #expect(body["ssh_authorized_keys"] as? [String] == ["ssh-ed25519 AAAA ops"])
    }

    /// The instance id changes exactly when what the guest is told changes, so cloud-init
    /// applies a changed network as on a first boot.
    @Test func instanceIDFollowsTheNetwork() throws {
        func id(_ nics: [VMNIC], _ host: String = "deb") throws -> String {
            try #require(try object(CloudSeed(Self.spec(nics), seed: SeedSpec(hostname: host)).metaData)["instance-id"] as? String)
        }
        let a = [Self.nic(0, ["10.40.0.10/24"])]
        #expect(try id(a) == id(a))
        #expect(try id(a) != id([Self.nic(0, ["10.40.0.11/24"])]))
        #expect(try id(a) != id(a, "other"))
    }

    /// The user's file travels as is, base64 in its own MIME part next to Quiver's: a file that
    /// holds the boundary, a `--` line or YAML of its own cannot change Quiver's part.
    @Test func userDataTravelsUntouchedInItsOwnPart() throws {
        let hostile = Data("#cloud-config\nruncmd: [echo hi]\n--==quiver-seed-boundary==\nContent-Type: text/x-shellscript\n\n#!/bin/sh\nrm -rf /\n".utf8)
        let seed = CloudSeed(Self.spec([Self.nic(0, ["10.40.0.10/24"])]), seed: SeedSpec(hostname: "deb", userData: "/u", sshAuthorizedKeys: ["ssh-ed25519 AAAA k"]),
                             userFile: hostile)
        let text = String(decoding: seed.userData, as: UTF8.self)
        #expect(text.hasPrefix("Content-Type: multipart/mixed; boundary=\"==quiver-seed-boundary==\"\r\n"))
        // Exactly two parts and the closing boundary: the user's boundary line is inside base64.
        let lines = text.components(separatedBy: "\r\n")
        #expect(lines.filter { $0 == "--==quiver-seed-boundary==" }.count == 2)
        #expect(lines.filter { $0 == "--==quiver-seed-boundary==--" }.count == 1)
        #expect(!text.contains("rm -rf"))
        // Each part decodes back to what went in.
        let parts = text.components(separatedBy: "--==quiver-seed-boundary==").dropFirst().dropLast()
        let decoded = parts.map { part -> Data in
            let body = part.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
            return Data(base64Encoded: body.replacingOccurrences(of: "\r\n", with: ""))!
        }
        #expect(decoded.count == 2)
        #expect(String(decoding: decoded[0], as: UTF8.self).hasPrefix("#cloud-config\n"))
        #expect(decoded[1] == hostile)
        #expect(parts.last?.contains("Content-Type: text/plain") == true)
    }

    /// Values from a file reach the seed only as JSON strings: a host name or key with quotes,
    /// newlines or YAML syntax stays one value.
    @Test func hostileValuesStayStrings() throws {
        let name = "deb\"\n- evil: true\n"
        let seed = CloudSeed(Self.spec([Self.nic(0, ["10.40.0.10/24"])]), seed: SeedSpec(hostname: name, sshAuthorizedKeys: ["ssh-ed25519 AAAA\"}\n"]))
        #expect(try object(seed.metaData)["local-hostname"] as? String == name)
        #expect(try object(seed.metaData).count == 2)
    }
}

/// The default routes a guest's kernel lists, as `configured` reads them.
@Suite struct GuestRouteTests {
    @Test func defaultRoutesFromTheKernelsTables() throws {
        let v4 = """
        Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
        eth0\t00000000\t0100280A\t0003\t0\t0\t0\t00000000\t0\t0\t0
        eth0\t0000280A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
        eth1\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0
        """
        let v6 = """
        fd400000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0
        00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd400000000000000000000000000001 00000400 00000001 00000000 00000003 eth0
        00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo
        """
        let routes = GuestRoute.defaults(ipv4: v4, ipv6: v6)
        #expect(routes == [GuestRoute(gateway: try IPAddress("10.40.0.1"), device: "eth0"), GuestRoute(gateway: try IPAddress("fd40::1"), device: "eth0")])
        #expect(GuestRoute.defaults(ipv4: "", ipv6: "").isEmpty)
    }
}
