import Foundation
import QuiverProtection
import QuiverValues

/// The network configuration a runtime hands the plugin on stdin (SPEC.md, "Network configuration
/// format" and CONVENTIONS.md), validated into typed values. `prevResult` is kept as it came, to
/// be passed through unchanged.
public struct CNIConfig: @unchecked Sendable {
    /// Versions this plugin speaks, oldest first; the result carries the configuration's.
    public static let supportedVersions = ["0.4.0", "1.0.0", "1.1.0"]

    public var cniVersion: String
    public var name: String
    public var type: String
    public var bandwidth: CNIBandwidth?
    /// `tenant`: the attachment shares this tenant's aggregate cap on the node.
    public var tenant: CNITenant?
    /// `floor`: the attachment's guaranteed rate within its tenant.
    public var floor: Bitrate?
    /// Main-plugin mode: the switch quiver-cni puts the host side on, and the IPAM plugin.
    public var switchName: InterfaceName?
    public var ipamType: String?
    /// `protection`: as in topology files.
    public var protection: [ProtectionKind] = []
    /// `flows`: as in topology files, caps of parts of the attachment's traffic.
    public var flows: [FlowCap] = []
    /// The previous plugin's result in a chain (nil for a first plugin or a DEL without one).
    public var prevResult: [String: Any]?
    /// GC: the attachments that are still in use, as (container id, interface name).
    public var validAttachments: [(containerID: String, ifname: String)] = []

    /// Keys of this plugin's configuration, beyond the spec's own (an unknown key is an error 2:
    /// a typo must not silently leave a pod uncapped).
    static let knownKeys: Set<String> = ["cniVersion", "name", "type", "runtimeConfig", "prevResult", "capabilities", "args",
                                         "ingressRate", "ingressBurst", "egressRate", "egressBurst", "cni.dev/valid-attachments", "cniVersions",
                                         "tenant", "floor", "switch", "ipam", "protection", "flows"]

    public init(json data: Data, command: CNIEnvironment.Command) throws(CNIError) {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw CNIError(.decodeFailure, "the network configuration on stdin is not JSON", details: "\(error.localizedDescription)")
        }
        guard let o = object as? [String: Any] else { throw CNIError(.decodeFailure, "the network configuration on stdin is not a JSON object") }
        guard let v = o["cniVersion"] as? String else {
            throw CNIError(.invalidConfig, "cniVersion is missing or not a string", details: "one of \(Self.supportedVersions.joined(separator: ", "))")
        }
        cniVersion = v
        if command == .version {
            name = ""
            type = ""
            return
        }
        guard Self.supportedVersions.contains(v) else {
            throw CNIError(.incompatibleVersion, "cniVersion \(InvalidValue.quoted(v, limit: 40)) is not supported",
                           details: "quiver-cni speaks \(Self.supportedVersions.joined(separator: ", "))")
        }
        guard let n = o["name"] as? String, !n.isEmpty else { throw CNIError(.invalidConfig, "name is missing or empty") }
        guard let t = o["type"] as? String, !t.isEmpty else { throw CNIError(.invalidConfig, "type is missing or empty") }
        name = n
        type = t
        // DEL removes what ADD made, found by tag, and needs none of the caps' values. It must
        // not fail on a value that ADD refused: a failing DEL stops the runtime's DEL of the whole
        // chain, and the plugins before this one keep what they made (containerd then leaves
        // the pod's veth and addresses behind). So for DEL an unknown key and a bad rate, tenant,
        // floor or flow are left out rather than errors.
        let lenient = command == .del
        for k in o.keys where !Self.knownKeys.contains(k) && !lenient {
            throw CNIError(.unsupportedField, "quiver-cni has no configuration key \(InvalidValue.quoted(k, limit: 60))",
                           details: "its keys: ingressRate, ingressBurst, egressRate, egressBurst, tenant, floor, flows, protection, switch, ipam and runtimeConfig.bandwidth (docs/CNI.md)")
        }
        if let p = o["prevResult"] {
            guard let pr = p as? [String: Any] else { throw CNIError(.invalidConfig, "prevResult is not a JSON object") }
            prevResult = pr
        }
        let runtime = o["runtimeConfig"] as? [String: Any]
        if o["runtimeConfig"] != nil && runtime == nil { throw CNIError(.invalidConfig, "runtimeConfig is not a JSON object") }
        // The runtime's per-pod values win over the configuration's defaults (CONVENTIONS.md).
        let fromRuntime = runtime?["bandwidth"]
        if fromRuntime != nil && !(fromRuntime is [String: Any]) { throw CNIError(.invalidConfig, "runtimeConfig.bandwidth is not a JSON object") }
        do throws(CNIError) {
            try readCaps(o, runtime: fromRuntime as? [String: Any])
        } catch where !lenient {
            throw error
        } catch {
            // What was read before the bad value is kept; the tenant is what DEL needs to take
            // the attachment out of its group, so it is read even when a rate before it was bad.
            if tenant == nil, let t = o["tenant"] { tenant = try? CNITenant(json: t) }
        }
        try readMainPlugin(o)
        if command == .gc {
            validAttachments = try Self.attachments(o["cni.dev/valid-attachments"])
        }
    }

    /// The caps: the runtime's or the configuration's rates, `tenant`, `floor`, `flows`.
    mutating func readCaps(_ o: [String: Any], runtime: [String: Any]?) throws(CNIError) {
        bandwidth = try CNIBandwidth(runtime: runtime, config: o)
        if let t = o["tenant"] { tenant = try CNITenant(json: t) }
        if let f = o["floor"] {
            guard let t = tenant else { throw CNIError(.invalidConfig, "floor needs a tenant", details: "a floor is a share of a tenant's aggregate cap") }
            let r = try CNITenant.rate(f, "floor")
            guard r <= t.maxbw else { throw CNIError(.invalidConfig, "floor \(r) is above tenant \(t.name)'s maxbw \(t.maxbw)") }
            floor = r
        }
        if let f = o["flows"] { flows = try CNIFlows.parse(f) }
    }

    /// `protection`, and main-plugin mode's keys `switch` and `ipam`.
    mutating func readMainPlugin(_ o: [String: Any]) throws(CNIError) {
        if let p = o["protection"] {
            guard let list = p as? [Any] else { throw CNIError(.invalidConfig, "protection must be a list", details: #"e.g. ["mac-nospoof", "ip-nospoof"]"#) }
            for item in list {
                guard let s = item as? String, let k = ProtectionKind(rawValue: s) else {
                    throw CNIError(.invalidConfig, "protection \(InvalidValue.quoted("\(item)", limit: 40)) is not one Quiver has",
                                   details: ProtectionKind.allCases.map(\.rawValue).joined(separator: ", "))
                }
                if !protection.contains(k) { protection.append(k) }
            }
        }
        guard let sw = o["switch"] else { return }
        guard let name = sw as? String else { throw CNIError(.invalidConfig, "switch must be a bridge name") }
        do { switchName = try InterfaceName(validating: name) } catch { throw CNIError(.invalidConfig, "switch: \(error)") }
        guard let ipam = o["ipam"] as? [String: Any], let t = ipam["type"] as? String else {
            throw CNIError(.invalidConfig, "a switch needs ipam with a type", details: #"e.g. "ipam": {"type": "host-local", "subnet": "10.22.0.0/24"}"#)
        }
        let ok = !t.isEmpty && t.count <= 64 && t.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0) } && t != "." && t != ".."
        guard ok else { throw CNIError(.invalidConfig, "ipam type \(InvalidValue.quoted(t, limit: 60)) is not a plugin name", details: "letters, digits, '_', '-', '.'; no path") }
        ipamType = t
    }

    static func attachments(_ value: Any?) throws(CNIError) -> [(containerID: String, ifname: String)] {
        guard let value else { return [] }
        guard let list = value as? [Any] else { throw CNIError(.invalidConfig, "cni.dev/valid-attachments is not a list") }
        var out: [(String, String)] = []
        for item in list {
            guard let a = item as? [String: Any], let id = a["containerID"] as? String, let i = a["ifname"] as? String else {
                throw CNIError(.invalidConfig, "each of cni.dev/valid-attachments needs containerID and ifname strings")
            }
            out.append((id, i))
        }
        return out
    }
}
