import Foundation
import QuiverBandwidth
import QuiverFabric
import QuiverKernel
import QuiverTopology
import Testing

/// Pure: parsing, every validation error with its line and column, the examples.
@Suite struct ParserTests {
    static let fixtureDirectory = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static let fixtures: [String] = (try? FileManager.default.contentsOfDirectory(atPath: fixtureDirectory.path))?
        .filter { $0.hasSuffix(".yaml") }.sorted() ?? []

    @Test func thereAreAtLeastFiftyMalformedFixtures() {
        #expect(Self.fixtures.count >= 50)
    }

    @Test(arguments: fixtures)
    func malformedFileIsRejectedWithItsMessage(_ name: String) throws {
        let path = Self.fixtureDirectory.appendingPathComponent(name).path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let expected = String(text.split(separator: "\n")[0].dropFirst("# expect: ".count))
        let e = #expect(throws: TopologyErrors.self) { try TopologyParser.parse(text, file: name) }
        let message = e?.description ?? ""
        #expect(message.contains(expected), "\(name): \(message)")
        // Every error that can point somewhere does: file:line:column.
        for err in e?.errors ?? [] where !(err.message.contains("empty")) {
            #expect(err.location != nil && err.location!.line > 0, "\(err)")
        }
    }

    @Test func errorsCarryLineAndColumnAndAllAreReported() throws {
        let text = """
        name: lab
        switches:
          - name: sw0
        tenants:
          - name: acme
            hosts:
              - name: web
                vnics:
                  - name: net0
                    over: nowhere
                    ips: [10.0.0.1/24]
                    maxbw: 10Mbps
                    allow_restricted: true
        """
        let e = #expect(throws: TopologyErrors.self) { try TopologyParser.parse(text, file: "t.yaml") }
        let d = e?.description ?? ""
        #expect(d.contains("t.yaml:12:20: error: maxbw: unknown bandwidth unit in \"10Mbps\""))
        #expect(d.contains("t.yaml:13:13: error: unknown key `allow_restricted` in vnic"))
        // Reference errors come from the second pass and still point at the VNIC.
        let syntaxFree = text.replacingOccurrences(of: "10Mbps", with: "10M").replacingOccurrences(of: "            allow_restricted: true", with: "")
        let e2 = #expect(throws: TopologyErrors.self) { try TopologyParser.parse(syntaxFree, file: "t.yaml") }
        #expect(e2?.description.contains("t.yaml:9:13: error: VNIC web/net0 is over \"nowhere\"") == true)
    }

    @Test func examplesAreValidAndDefaultsApply() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../topologies").standardized
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 3)
        for f in files { _ = try TopologyParser.load(path: dir.appendingPathComponent(f).path) }

        let t = try TopologyParser.load(path: dir.appendingPathComponent("two-tenants.yaml").path)
        #expect(t.name == "lab")
        let web = try #require(t.tenants.first?.hosts.first?.vnics.first)
        #expect(web.maxbw == .mbit(50))
        #expect(web.floor == .mbit(10))
        #expect(web.flows == [FlowCap(name: "http", transport: .tcp, localPort: 80, maxbw: .mbit(20))])
        #expect(web.protection == [.macNospoof, .ipNospoof, .restricted], "protection is on unless turned off")
        let db = try #require(t.tenants.first?.hosts.last?.vnics.first)
        #expect(db.mac == .auto)

        // The expect: block, typed, with defaults filled in.
        let web_ = Topology.EndpointRef(tenant: "acme", host: "web", vnic: nil)
        let app = Topology.EndpointRef(tenant: "globex", host: "app", vnic: nil)
        #expect(t.expectations.count == 7)
        guard case .reach(web_, _, [.icmp], 7, let at) = t.expectations[0] else { Issue.record("\(t.expectations[0])"); return }
        #expect(at.line == 36)
        guard case .noReach(web_, app, [.icmp, .tcp, .arp], 7, _) = t.expectations[2] else { Issue.record("\(t.expectations[2])"); return }
        guard case .bandwidth(_, _, .mbit(5), 0.1, 3, _) = t.expectations[5] else { Issue.record("\(t.expectations[5])"); return }
        guard case .spoof(app, [.mac, .ip, .arp, .ethertype], 200, _) = t.expectations[6] else { Issue.record("\(t.expectations[6])"); return }
    }

    @Test func jsonIsAcceptedToo() throws {
        let json = #"{"name": "js", "switches": [{"name": "sw0"}], "tenants": [{"name": "a", "hosts": [{"name": "h", "vnics": [{"name": "n0", "over": "sw0", "ips": ["10.0.0.2/24"], "maxbw": "5M"}]}]}]}"#
        let t = try TopologyParser.parse(json, file: "t.json")
        #expect(t.tenants[0].hosts[0].vnics[0].maxbw == .mbit(5))
    }

    @Test func kernelNamesAreDeterministic() {
        let n = KernelNames("lab")
        #expect(n.bridge("stub0") == "lab-stub0")
        #expect(n.hostDevice(host: "web", vnic: "net0") == "lab-web-net0")
        #expect(n.namespace(tenant: "acme", host: "web") == "lab-acme-web")
        #expect(n.ifbFrom(tenant: "acme") == "lab-acme-f")
        #expect(n.group == KernelNames("lab").group && n.group != KernelNames("lab2").group)
        #expect(n.group & 0xFF00_0000 == 0x5100_0000)
        let mac = n.autoMAC(tenant: "acme", host: "web", vnic: "net0")
        #expect(mac == n.autoMAC(tenant: "acme", host: "web", vnic: "net0"))
        #expect(!mac.isMulticast && mac.isLocallyAdministered)
    }

    @Test func graphShowsTenantsSwitchesAndCaps() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../topologies").standardized
        let t = try TopologyParser.load(path: dir.appendingPathComponent("two-tenants.yaml").path)
        let dot = TopologyGraph.render(t, format: .dot)
        #expect(dot.contains("subgraph \"cluster_acme\""))
        #expect(dot.contains("label=\"tenant acme (maxbw 100M)\""))
        #expect(dot.contains("\"host:acme/web\" -- \"switch:stub0\" [label=\"net0 10.10.0.11/24 fd10::11/64 maxbw 50M floor 10M 1 flow\"]"))
        let mermaid = TopologyGraph.render(t, format: .mermaid)
        #expect(mermaid.hasPrefix("graph LR"))
        #expect(mermaid.contains("subgraph t_globex[\"tenant globex maxbw 20M\"]"))
        // Macvtaps are marked, and a host link under one is drawn as such.
        let vm = try TopologyParser.parse("""
        name: hl
        switches: [{name: sw0}]
        tenants:
          - name: red
            hosts:
              - name: g3
                kind: vm
                kernel: /etc/hostname
                vnics: [{name: eth0, over: upl0, mode: macvtap, ips: [10.31.0.33/24]}]
        """, file: "hl.yaml")
        let m = TopologyGraph.render(vm, format: .mermaid)
        #expect(m.contains("sw_upl0[/\"upl0 (host link)\"/]") && m.contains("---|\"eth0 (macvtap) 10.31.0.33/24\"| sw_upl0"), "\(m)")
        #expect(TopologyGraph.render(vm, format: .dot).contains("\"switch:upl0\" [label=\"upl0 (host link)\", shape=parallelogram];"))
    }
}
