import Foundation
@testable import QuiverCNI
import QuiverValues
import Testing

/// The CNI protocol without the kernel: environment, configuration, bandwidth and every error
/// code a hostile or mistaken runtime input gets; VERSION.
@Suite struct CNIPureTests {
    func env(_ c: String, id: String? = "abc123", netns: String? = "/run/netns/x", ifname: String? = "eth0") -> [String: String] {
        var e = ["CNI_COMMAND": c]
        if let id { e["CNI_CONTAINERID"] = id }
        if let netns { e["CNI_NETNS"] = netns }
        if let ifname { e["CNI_IFNAME"] = ifname }
        return e
    }

    func run(_ e: [String: String], _ json: String) -> (Int32, [String: Any]) {
        let o = CNIPlugin.run(environment: e, stdin: Data(json.utf8))
        return (o.exitCode, (try? JSONSerialization.jsonObject(with: o.stdout) as? [String: Any]) ?? [:])
    }

    @Test func versionListsEverySupportedVersion() {
        let (rc, out) = run(["CNI_COMMAND": "VERSION"], #"{"cniVersion": "0.4.0"}"#)
        #expect(rc == 0)
        #expect(out["cniVersion"] as? String == "1.1.0")
        #expect(out["supportedVersions"] as? [String] == ["0.4.0", "1.0.0", "1.1.0"])
        // libcni probes the version with every other variable set to "dummy".
        let probe = run(["CNI_COMMAND": "VERSION", "CNI_NETNS": "dummy", "CNI_CONTAINERID": "dummy", "CNI_IFNAME": "dummy", "CNI_PATH": "dummy"],
                        #"{"cniVersion": "1.0.0"}"#)
        #expect(probe.0 == 0 && probe.1["supportedVersions"] != nil, "\(probe.1)")
    }

    /// The result is `prevResult` as it came: every kind of JSON value a previous plugin can put
    /// there, written back byte for byte as these cases say, and read back equal.
    @Test func resultsAreWrittenAsJSONThatReadsBackTheSame() throws {
        let cases: [(String, String)] = [
            (#"{"a":0}"#, #"{"a":0}"#), (#"{"a":1}"#, #"{"a":1}"#), (#"{"a":true}"#, #"{"a":true}"#),
            (#"{"a":false}"#, #"{"a":false}"#), (#"{"a":null}"#, #"{"a":null}"#), (#"{"a":-3}"#, #"{"a":-3}"#),
            (#"{"a":1.5}"#, #"{"a":1.5}"#), (#"{"a":18446744073709551615}"#, #"{"a":18446744073709551615}"#),
            (#"{"a":-2147483649}"#, #"{"a":-2147483649}"#), (#"{"a":2.0}"#, #"{"a":2}"#), (#"{"a":1e300}"#, #"{"a":1e+300}"#),
            (#"{"a":[1,"x",[],{}]}"#, #"{"a":[1,"x",[],{}]}"#),
            (#"{"a":"q\"b\\s/\n\r\t\u0001\u001f é €"}"#, #"{"a":"q\"b\\s/\n\r\t\u0001\u001f é €"}"#),
        ]
        for (input, want) in cases {
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(input.utf8)) as? [String: Any])
            let out = CNIJSONWriter.data(parsed)
            #expect(String(decoding: out, as: UTF8.self) == want, "\(input)")
            let again = try JSONSerialization.jsonObject(with: out) as? [String: Any]
            #expect(again.map { NSDictionary(dictionary: $0) } == NSDictionary(dictionary: parsed), "\(input)")
        }
        // The plugin's own values: Swift Bool, Int, String lists, nested objects; error keys sorted.
        #expect(String(decoding: CNIJSONWriter.data(["b": true, "n": 7, "l": ["x", "y"], "o": [["k": false]]] as [String: Any], sortedKeys: true), as: UTF8.self)
                == #"{"b":true,"l":["x","y"],"n":7,"o":[{"k":false}]}"#)
        // A whole ADD's result: prevResult through the plugin's run, the version set.
        let prev = #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"02:00:00:00:00:01","sandbox":"/run/netns/x"}],"ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1","interface":0}],"dns":{}}"#
        let (rc, err) = run(env("VERSION"), #"{"cniVersion":"1.0.0","prevResult":"# + prev + "}")
        #expect(rc == 0 && err["supportedVersions"] != nil)
    }

    @Test func environmentErrorsAreCodeFour() {
        let config = #"{"cniVersion": "1.1.0", "name": "n", "type": "quiver-cni"}"#
        let cases: [([String: String], String)] = [
            ([:], "CNI_COMMAND is not set"),
            (["CNI_COMMAND": "ADDD"], "CNI_COMMAND \"ADDD\" is not a CNI command"),
            (env("ADD", id: nil), "CNI_CONTAINERID is not set"),
            (env("ADD", id: "-rf"), "CNI_CONTAINERID \"-rf\" is not a container id"),
            (env("ADD", id: "a/../../etc"), "CNI_CONTAINERID \"a/../../etc\" is not a container id"),
            (env("ADD", netns: nil), "CNI_NETNS is not set"),
            (env("ADD", netns: "relative/ns"), "CNI_NETNS \"relative/ns\" is not an absolute path"),
            (env("ADD", ifname: nil), "CNI_IFNAME is not set"),
            (env("ADD", ifname: "a-name-that-is-far-too-long"), "CNI_IFNAME"),
            (env("ADD", ifname: "eth0/x"), "CNI_IFNAME"),
        ]
        for (e, message) in cases {
            let (rc, out) = run(e, config)
            #expect(rc == 1 && out["code"] as? Int == 4, "\(e): \(out)")
            #expect((out["msg"] as? String)?.hasPrefix(message) == true, "\(e): \(out)")
        }
        // DEL works without the namespace (the container may be gone).
        #expect(throws: Never.self) { try CNIEnvironment(env("DEL", netns: nil)) }
    }

    @Test func configurationErrorsGetTheSpecsCodes() {
        let e = env("ADD")
        let cases: [(String, Int, String)] = [
            ("not json", 6, "the network configuration on stdin is not JSON"),
            ("[1, 2]", 6, "the network configuration on stdin is not a JSON object"),
            (#"{"name": "n", "type": "t"}"#, 7, "cniVersion is missing"),
            (#"{"cniVersion": "0.3.1", "name": "n", "type": "t"}"#, 1, "cniVersion \"0.3.1\" is not supported"),
            (#"{"cniVersion": "1.1.0", "type": "t"}"#, 7, "name is missing"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "ingresRate": 1000000}"#, 2, "quiver-cni has no configuration key \"ingresRate\""),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "prevResult": 3}"#, 7, "prevResult is not a JSON object"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "runtimeConfig": {"bandwidth": 5}}"#, 7, "runtimeConfig.bandwidth is not a JSON object"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "runtimeConfig": {"bandwidth": {"ingressRate": -1}}}"#, 7, "runtimeConfig.bandwidth.ingressRate must be a whole number"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "runtimeConfig": {"bandwidth": {"ingressRate": 1000000.5}}}"#, 7, "runtimeConfig.bandwidth.ingressRate must be a whole number"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "runtimeConfig": {"bandwidth": {"ingressRate": true}}}"#, 7, "runtimeConfig.bandwidth.ingressRate must be a whole number"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "runtimeConfig": {"bandwidth": {"ingressRate": "10M"}}}"#, 7, "runtimeConfig.bandwidth.ingressRate must be a whole number"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "runtimeConfig": {"bandwidth": {"IngressRate": "10M"}}}"#, 7, "runtimeConfig.bandwidth.ingressRate must be a whole number"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "runtimeConfig": {"bandwidth": {"ingressRate": 1000000, "IngressRate": 2000000}}}"#, 7,
             "runtimeConfig.bandwidth has \"ingressrate\" twice, in different cases"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "egressRate": 10}"#, 7, "egressRate 10 is out of range"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "egressRate": 1e15}"#, 7, "egressRate 1000000000000000 is out of range"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "ingressBurst": 100000}"#, 7, "ingressBurst/egressBurst without a rate"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "ingressRate": 1000000}"#, 7, "quiver-cni runs chained: prevResult is missing"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "tenant": "acme"}"#, 7, "tenant must be an object with a name"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "tenant": {"name": "Acme!", "maxbw": "30M"}}"#, 7, "tenant name \"Acme!\" is not one quiver-cni accepts"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "tenant": {"name": "a-very-long-name", "maxbw": "30M"}}"#, 7, "tenant name \"a-very-long-name\""),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "tenant": {"name": "acme"}}"#, 7, "tenant acme needs maxbw"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "tenant": {"name": "acme", "maxbw": "30M", "max": 1}}"#, 2, "tenant has no key \"max\""),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "tenant": {"name": "acme", "maxbw": "30Q"}}"#, 7, "tenant.maxbw: unknown bandwidth unit"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "tenant": {"name": "acme", "maxbw": 0}}"#, 7, "tenant.maxbw must be a rate"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "floor": "10M"}"#, 7, "floor needs a tenant"),
            (#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "tenant": {"name": "acme", "maxbw": "30M"}, "floor": "50M"}"#, 7, "floor 50M is above tenant acme's maxbw 30M"),
        ]
        for (json, code, message) in cases {
            let (rc, out) = run(e, json)
            #expect(rc == 1 && out["code"] as? Int == code, "\(json): \(out)")
            #expect((out["msg"] as? String)?.hasPrefix(message) == true, "\(json): \(out)")
        }
    }

    /// A configuration that ADD refuses is still one DEL can act on: DEL removes by tag and
    /// must not fail, or the runtime's DEL of the chain stops and the plugins before quiver-cni
    /// keep what they made (seen under containerd: the pod's veth was left).
    @Test func delAcceptsWhatAddRefuses() throws {
        let base = #""cniVersion": "1.1.0", "name": "n", "type": "t""#
        for extra in [#""ingresRate": 1000000"#, #""runtimeConfig": {"bandwidth": {"IngressRate": 1000}}"#, #""flows": "slow""#,
                      #""floor": "10M""#, #""egressRate": 10, "tenant": {"name": "acme", "maxbw": "30M"}"#] {
            let json = Data("{\(base), \(extra)}".utf8)
            #expect(throws: CNIError.self, "ADD refuses \(extra)") { try CNIConfig(json: json, command: .add) }
            let del = try CNIConfig(json: json, command: .del)
            #expect(del.bandwidth == nil && del.flows.isEmpty && del.floor == nil, "\(extra)")
            #expect(del.tenant?.name == (extra.contains("acme") ? "acme" : nil), "DEL still knows the tenant: \(extra)")
        }
        // What is not a cap is still checked: DEL needs a version and a name.
        #expect(throws: CNIError.self) { try CNIConfig(json: Data(#"{"name": "n", "type": "t"}"#.utf8), command: .del) }
    }

    @Test func burstsSaneAreKeptAbsurdAreResized() throws {
        func bw(_ o: [String: Any]) throws -> CNIBandwidth? { try CNIBandwidth(runtime: o, config: [:]) }
        // 10 Mbit/s: 100 ms is 1,000,000 bits; 200,000 bits (25,000 bytes) is sane.
        let sane = try #require(try bw(["ingressRate": 10_000_000, "ingressBurst": 200_000, "egressRate": 5_000_000]))
        #expect(sane.ingressRate == Bitrate(bitsPerSecond: 10_000_000) && sane.ingressBurstBytes == 25_000)
        #expect(sane.egressRate == Bitrate(bitsPerSecond: 5_000_000) && sane.egressBurstBytes == nil && sane.ignoredBursts.isEmpty)
        // Kubernetes' default 2³¹−1 bits, and a burst below one frame: Quiver sizes them.
        let k8s = try #require(try bw(["ingressRate": 1_000_000, "ingressBurst": 2_147_483_647, "egressRate": 1_000_000, "egressBurst": 800]))
        #expect(k8s.ingressBurstBytes == nil && k8s.egressBurstBytes == nil)
        #expect(k8s.ignoredBursts.count == 2 && k8s.ignoredBursts[0].hasPrefix("runtimeConfig.bandwidth.ingressBurst 2147483647 bits"))
        // Rate 0 leaves that direction uncapped; no rate at all: nothing to do.
        #expect(try bw(["ingressRate": 0, "egressRate": 2_000_000])?.ingressRate == nil)
        #expect(try bw([:]) == nil)
        // containerd's CRI plugin (go-cni) sends the capability with Go's field names and a
        // burst of 2³²−1 bits: the keys match whatever their case, and the burst is resized.
        let cri = try #require(try bw(["IngressRate": 10_000_000, "IngressBurst": 4_294_967_295, "EgressRate": 5_000_000, "EgressBurst": 4_294_967_295]))
        #expect(cri.ingressRate == Bitrate(bitsPerSecond: 10_000_000) && cri.egressRate == Bitrate(bitsPerSecond: 5_000_000))
        #expect(cri.ingressBurstBytes == nil && cri.egressBurstBytes == nil && cri.ignoredBursts.count == 2)
        // The runtime's values win over the configuration's own keys.
        let both = try #require(try CNIBandwidth(runtime: ["ingressRate": 3_000_000], config: ["ingressRate": 9_000_000]))
        #expect(both.ingressRate == Bitrate(bitsPerSecond: 3_000_000))
    }

    /// `flows`: every hostile or mistaken value and the error it gets; a good list is read into
    /// the topology files' flow model.
    @Test func flowsAreReadAsInTopologyFilesAndBadOnesRefused() throws {
        let e = env("ADD")
        func config(_ flows: String) -> String { #"{"cniVersion": "1.1.0", "name": "n", "type": "t", "flows": "# + flows + "}" }
        let fourteen = (0..<14).map { #"{"name": "f\#($0)", "maxbw": "1M"}"# }.joined(separator: ", ")
        let cases: [(String, Int, String)] = [
            (#""slow""#, 7, "flows must be a list"),
            ("[3]", 7, "flows[0] is not an object"),
            (#"[{"name": "a", "maxbw": "1M", "port": 80}]"#, 2, "flows[0] has no key \"port\""),
            (#"[{"maxbw": "1M"}]"#, 7, "flows[0] needs a name"),
            (#"[{"name": "", "maxbw": "1M"}]"#, 7, "flows[0].name \"\" is not a flow name"),
            (#"[{"name": "a b;rm", "maxbw": "1M"}]"#, 7, "flows[0].name \"a b;rm\" is not a flow name"),
            (#"[{"name": "a"}]"#, 7, "flow a has no maxbw"),
            (#"[{"name": "a", "maxbw": "fast"}]"#, 7, "flow a: maxbw:"),
            (#"[{"name": "a", "maxbw": -5}]"#, 7, "flow a: maxbw must be a rate"),
            (#"[{"name": "a", "maxbw": "1M", "transport": "sctp"}]"#, 7, "flow a: transport \"sctp\" is not tcp, udp or icmp"),
            (#"[{"name": "a", "maxbw": "1M", "transport": "tcp", "local-port": 0}]"#, 7, "flow a: local-port must be a port from 1 to 65535"),
            (#"[{"name": "a", "maxbw": "1M", "transport": "tcp", "remote-port": 65536}]"#, 7, "flow a: remote-port must be a port from 1 to 65535"),
            (#"[{"name": "a", "maxbw": "1M", "transport": "tcp", "remote-port": "80"}]"#, 7, "flow a: remote-port must be a port"),
            (#"[{"name": "a", "maxbw": "1M", "transport": "tcp", "remote-port": 80.5}]"#, 7, "flow a: remote-port must be a port"),
            (#"[{"name": "a", "maxbw": "1M", "remote-ip": "10.0.0.300/24"}]"#, 7, "flow a: remote-ip:"),
            (#"[{"name": "a", "maxbw": "1M", "remote-ip": 10}]"#, 7, "flow a: remote-ip must be a prefix"),
            (#"[{"name": "a", "maxbw": "1M", "remote-port": 80}]"#, 7, "flows: flow a matches a port, so its transport must be tcp or udp"),
            (#"[{"name": "a", "maxbw": "1M", "transport": "icmp", "local-port": 80}]"#, 7, "flows: flow a matches a port, so its transport must be tcp or udp"),
            (#"[{"name": "a", "maxbw": "1M", "local-ip": "10.0.0.0/8", "remote-ip": "fd00::/8"}]"#, 7, "flows: flow a mixes an IPv4 and an IPv6 prefix"),
            (#"[{"name": "a", "maxbw": "1M"}, {"name": "a", "maxbw": "2M"}]"#, 7, "flows: flow a is defined twice"),
            ("[" + fourteen + "]", 7, "flows: 14 flows; at most 13 per VNIC"),
        ]
        for (flows, code, message) in cases {
            let (rc, out) = run(e, config(flows))
            #expect(rc == 1 && out["code"] as? Int == code, "\(flows): \(out)")
            #expect((out["msg"] as? String)?.hasPrefix(message) == true, "\(flows): \(out)")
        }
        let c = try CNIConfig(json: Data(config(#"[{"name": "rsync", "transport": "tcp", "remote-ip": "10.9.0.0/16", "remote-port": 873, "maxbw": "5M"},"#
                                               + #" {"name": "off", "transport": "udp", "local-port": 9, "maxbw": 0}, {"name": "b", "maxbw": 2000000}]"#).utf8), command: .add)
        #expect(c.flows == [FlowCap(name: "rsync", transport: .tcp, remoteIP: try IPPrefix("10.9.0.0/16"), remotePort: 873, maxbw: try Bitrate("5M")),
                            FlowCap(name: "off", transport: .udp, localPort: 9, maxbw: Bitrate(bitsPerSecond: 0)),
                            FlowCap(name: "b", maxbw: Bitrate(bitsPerSecond: 2_000_000))])
    }

    /// Chained protection allows the addresses `prevResult` gives the container's interface —
    /// not those of another interface in the result — each as a host prefix.
    @Test func chainedProtectionTakesTheContainerInterfacesAddresses() throws {
        let eth0 = try InterfaceName(validating: "eth0")
        let prev: [String: Any] = [
            "interfaces": [["name": "cni0", "mac": "02:00:00:00:00:01"], ["name": "veth1", "mac": "02:00:00:00:00:02"],
                           ["name": "eth0", "mac": "02:00:00:00:00:03", "sandbox": "/run/netns/p"], ["name": "eth1", "sandbox": "/run/netns/p"]],
            "ips": [["address": "10.1.0.5/24", "interface": 2], ["address": "fd00::5/64", "interface": 2],
                    ["address": "10.2.0.5/24", "interface": 3], ["address": "10.3.0.1/24", "interface": 0], ["address": "10.4.0.1/24", "interface": 9]],
        ]
        #expect(try CNIAttachment.containerAddresses(prev, ifname: eth0).map(\.description) == ["10.1.0.5/32", "fd00::5/128"])
        // 0.4.0-style results may give no interface index: every address is the container's.
        #expect(try CNIAttachment.containerAddresses(["ips": [["version": "4", "address": "10.1.0.5/24"]]], ifname: eth0).map(\.description) == ["10.1.0.5/32"])
        #expect(throws: CNIError.self) { try CNIAttachment.containerAddresses(["ips": [["address": "10.1.0.500/24"]]], ifname: eth0) }
        // protection is accepted chained now; an unknown kind is refused.
        #expect(throws: Never.self) { try CNIConfig(json: Data(#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "protection": ["mac-nospoof"]}"#.utf8), command: .add) }
        let (rc, out) = run(env("ADD"), #"{"cniVersion": "1.1.0", "name": "n", "type": "t", "protection": ["mac-spoof"]}"#)
        #expect(rc == 1 && out["code"] as? Int == 7 && (out["msg"] as? String)?.hasPrefix("protection \"mac-spoof\" is not one Quiver has") == true, "\(out)")
    }

    /// How quiver-cni starts its IPAM plugin (and tests their chains): exactly the environment
    /// given; an input far larger than a pipe holds, echoed back whole while it is written (no
    /// deadlock); a child that exits without reading it costs no SIGPIPE; a missing program is
    /// an error, not a crash.
    @Test func pluginsAreSpawnedWithTheirEnvironmentAndInput() throws {
        let env = try Spawn.run(["/usr/bin/env"], descriptors: [], captureOutput: true, environment: ["CNI_COMMAND": "ADD", "X": "a b"], input: [])
        #expect(env.status == 0 && String(decoding: env.stdout, as: UTF8.self) == "CNI_COMMAND=ADD\nX=a b\n")
        let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let echoed = try Spawn.run(["/bin/cat"], descriptors: [], captureOutput: true, environment: [:], input: big)
        #expect(echoed.status == 0 && echoed.stdout == Data(big))
        let ignored = try Spawn.run(["/bin/true"], descriptors: [], captureOutput: true, environment: [:], input: big)
        #expect(ignored.status == 0)
        #expect(throws: SpawnError.self) { try Spawn.run(["/nonexistent/plugin"], descriptors: [], captureOutput: true, environment: [:], input: [1]) }
    }

    @Test func gcAttachmentsAreRead() throws {
        let c = try CNIConfig(json: Data(#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "cni.dev/valid-attachments": [{"containerID": "a1", "ifname": "eth0"}]}"#.utf8), command: .gc)
        #expect(c.validAttachments.map { "\($0.containerID)/\($0.ifname)" } == ["a1/eth0"])
        #expect(throws: CNIError.self) { try CNIConfig(json: Data(#"{"cniVersion": "1.1.0", "name": "n", "type": "t", "cni.dev/valid-attachments": [{"containerID": 3}]}"#.utf8), command: .gc) }
    }

    @Test func tagsNameTheirAttachment() throws {
        let a = CNIAttachment(containerID: "c0ffee", ifname: try InterfaceName(validating: "eth1"))
        #expect(a.tag == "quiver:cni/c0ffee/eth1")
        #expect(CNIAttachment.parse(tag: a.tag)?.containerID == "c0ffee")
        // Derived names: eight hex digits of the tag's hash, leading zeros kept.
        #expect(a.guardTable == "qcni-" + String(format: "%08x", StableHash.fnv1a32(a.tag)))
        for i in 0..<2000 { let t = "quiver:cni/c\(i)/eth0"; #expect(StableHash.hex32(t) == String(format: "%08x", StableHash.fnv1a32(t))) }
        for foreign in ["quiver:cap/eth0", "quiver:cni/../eth0", "quiver:cni/a/b/c", "quiver:cni/a/", "quiver:lab/x"] {
            #expect(CNIAttachment.parse(tag: foreign) == nil, "\(foreign)")
        }
    }
}
