/// `quiver graph`: the topology as a picture — tenants as clusters, switches, hosts, and VNIC
/// edges labelled with address and caps.
public enum TopologyGraph {
    public enum Format: String, CaseIterable, Sendable { case dot, mermaid }

    static func label(_ v: Topology.VNIC) -> String {
        var parts = [v.name] + (v.mode == "macvtap" ? ["(macvtap)"] : []) + v.ips.map(\.description)
        if let m = v.maxbw { parts.append("maxbw \(m)") }
        if let f = v.floor { parts.append("floor \(f)") }
        if !v.flows.isEmpty { parts.append("\(v.flows.count) flow" + (v.flows.count == 1 ? "" : "s")) }
        return parts.joined(separator: " ")
    }

    /// Host links under macvtaps (`over:` naming no switch), in file order.
    static func hostLinks(_ t: Topology) -> [String] {
        var seen = Set(t.switches.map(\.name))
        return t.tenants.flatMap { $0.hosts.flatMap(\.vnics) }.map(\.over).filter { seen.insert($0).inserted }
    }

    public static func render(_ t: Topology, format: Format) -> String {
        switch format {
        case .dot: return t.nodes.isEmpty ? dot(t) : dotNodes(t)
        case .mermaid: return t.nodes.isEmpty ? mermaid(t) : mermaidNodes(t)
        }
    }

    static func dot(_ t: Topology) -> String {
        var out = ["graph \"\(t.name)\" {", "  rankdir=LR;", "  node [fontname=\"Helvetica\"];"]
        for s in t.switches {
            out.append("  \"switch:\(s.name)\" [label=\"\(s.name)\", shape=ellipse, style=filled, fillcolor=lightgrey];")
        }
        for l in hostLinks(t) {
            out.append("  \"switch:\(l)\" [label=\"\(l) (host link)\", shape=parallelogram];")
        }
        for tenant in t.tenants {
            out.append("  subgraph \"cluster_\(tenant.name)\" {")
            out.append("    label=\"tenant \(tenant.name)\(tenant.maxbw.map { " (maxbw \($0))" } ?? "")\";")
            for h in tenant.hosts {
                out.append("    \"host:\(tenant.name)/\(h.name)\" [label=\"\(h.name)\", shape=box];")
            }
            out.append("  }")
        }
        for tenant in t.tenants {
            for h in tenant.hosts {
                for v in h.vnics {
                    out.append("  \"host:\(tenant.name)/\(h.name)\" -- \"switch:\(v.over)\" [label=\"\(label(v))\"];")
                }
            }
        }
        out.append("}")
        return out.joined(separator: "\n")
    }

    static func mermaid(_ t: Topology) -> String {
        func id(_ s: String) -> String { s.replacingOccurrences(of: "/", with: "__") }
        var out = ["graph LR"]
        for s in t.switches { out.append("  sw_\(id(s.name))((\(s.name)))") }
        for l in hostLinks(t) { out.append("  sw_\(id(l))[/\"\(l) (host link)\"/]") }
        for tenant in t.tenants {
            out.append("  subgraph t_\(id(tenant.name))[\"tenant \(tenant.name)\(tenant.maxbw.map { " maxbw \($0)" } ?? "")\"]")
            for h in tenant.hosts { out.append("    h_\(id(tenant.name))__\(id(h.name))[\(h.name)]") }
            out.append("  end")
        }
        for tenant in t.tenants {
            for h in tenant.hosts {
                for v in h.vnics { out.append("  h_\(id(tenant.name))__\(id(h.name)) ---|\"\(label(v))\"| sw_\(id(v.over))") }
            }
        }
        return out.joined(separator: "\n")
    }
}
