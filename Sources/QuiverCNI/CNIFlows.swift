import Foundation
import QuiverValues

/// `"flows": [{"name": "bulk", "transport": "tcp", "remote-port": 873, "maxbw": "5M"}, …]`: flows
/// of the attachment with their own caps, keyed as in topology files (`flows[]` in
/// docs/TOPOLOGY.md). "Local" is the container's end. A flow's `maxbw` caps it each way inside the
/// attachment's own caps; `0` blocks it.
enum CNIFlows {
    static let keys = ["name", "transport", "local-ip", "remote-ip", "local-port", "remote-port", "maxbw"]

    static func parse(_ value: Any) throws(CNIError) -> [FlowCap] {
        guard let list = value as? [Any] else {
            throw CNIError(.invalidConfig, "flows must be a list", details: #"e.g. "flows": [{"name": "rsync", "transport": "tcp", "remote-port": 873, "maxbw": "5M"}]"#)
        }
        var flows: [FlowCap] = []
        for (i, item) in list.enumerated() {
            guard let o = item as? [String: Any] else { throw CNIError(.invalidConfig, "flows[\(i)] is not an object") }
            flows.append(try flow(o, at: "flows[\(i)]"))
        }
        let problems = FlowCap.problems(flows, of: "flows")
        if let first = problems.first { throw CNIError(.invalidConfig, first, details: problems.dropFirst().joined(separator: "; ")) }
        return flows
    }

    static func flow(_ o: [String: Any], at key: String) throws(CNIError) -> FlowCap {
        for k in o.keys.sorted() where !keys.contains(k) {
            throw CNIError(.unsupportedField, "\(key) has no key \(InvalidValue.quoted(k, limit: 40))", details: "its keys: " + keys.joined(separator: ", "))
        }
        guard let name = o["name"] as? String else { throw CNIError(.invalidConfig, "\(key) needs a name") }
        // Flow names appear in class labels and messages: a short word, nothing that could be read as syntax.
        let nameOK = (1...32).contains(name.count) && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)
        }
        guard nameOK else {
            throw CNIError(.invalidConfig, "\(key).name \(InvalidValue.quoted(name, limit: 40)) is not a flow name", details: "1 to 32 of letters, digits, '-', '_', '.'")
        }
        let at = "flow \(name)"
        var transport: Transport?
        if let t = o["transport"] {
            guard let s = t as? String, let v = Transport(rawValue: s) else {
                throw CNIError(.invalidConfig, "\(at): transport \(InvalidValue.quoted("\(t)", limit: 20)) is not tcp, udp or icmp")
            }
            transport = v
        }
        func prefix(_ k: String) throws(CNIError) -> IPPrefix? {
            guard let v = o[k] else { return nil }
            guard let s = v as? String else { throw CNIError(.invalidConfig, "\(at): \(k) must be a prefix such as \"10.0.0.0/24\"") }
            do { return try IPPrefix(s) } catch { throw CNIError(.invalidConfig, "\(at): \(k): \(error)") }
        }
        func port(_ k: String) throws(CNIError) -> UInt16? {
            guard let v = o[k] else { return nil }
            guard let n = v as? NSNumber, String(cString: n.objCType) != "c", n.doubleValue == n.doubleValue.rounded(),
                  (1...65535).contains(n.doubleValue) else {
                throw CNIError(.invalidConfig, "\(at): \(k) must be a port from 1 to 65535")
            }
            return n.uint16Value
        }
        guard let m = o["maxbw"] else { throw CNIError(.invalidConfig, "\(at) has no maxbw", details: #"e.g. "maxbw": "20M" (0 blocks the flow)"#) }
        let maxbw: Bitrate
        if let n = m as? NSNumber, String(cString: n.objCType) != "c", n.doubleValue == 0 {
            maxbw = Bitrate(bitsPerSecond: 0)
        } else if let s = m as? String, (try? Bitrate(s))?.isBlocked == true {
            maxbw = Bitrate(bitsPerSecond: 0)
        } else {
            maxbw = try CNITenant.rate(m, "\(at): maxbw")
        }
        return FlowCap(name: name, transport: transport, localIP: try prefix("local-ip"), remoteIP: try prefix("remote-ip"),
                       localPort: try port("local-port"), remotePort: try port("remote-port"), maxbw: maxbw)
    }
}
