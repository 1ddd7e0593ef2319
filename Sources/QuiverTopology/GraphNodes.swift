/// `quiver graph` of a multi-node file: each node a cluster holding its part of every switch and
/// its tenants' hosts; each tenant's VXLAN segment an edge between the nodes' parts of a switch.
extension TopologyGraph {
    /// (node, switch) pairs in use, in file order, and each spanning switch's segments as edges.
    static func nodeSwitches(_ t: Topology) -> (parts: [(node: String, sw: String)], segments: [(a: String, b: String, sw: String, label: String)]) {
        var parts: [(String, String)] = []
        for n in t.nodes {
            for s in t.switches + hostLinks(t).map({ Topology.Switch(name: $0, mtu: nil, location: t.nodes[0].location) })
            where t.tenants.contains(where: { $0.hosts.contains { $0.node == n.name && $0.vnics.contains { $0.over == s.name } } }) {
                parts.append((n.name, s.name))
            }
        }
        var segments: [(String, String, String, String)] = []
        for s in t.switches where t.spanningSwitches.contains(s.name) {
            for tenant in t.tenants(on: s.name) {
                let hosts = t.tenants.first { $0.name == tenant }?.hosts.filter { $0.vnics.contains { $0.over == s.name } } ?? []
                let onNodes = t.nodes.map(\.name).filter { n in hosts.contains { $0.node == n } }
                for (i, a) in onNodes.enumerated() {
                    for b in onNodes[(i + 1)...] { segments.append((a, b, s.name, "\(tenant) VNI \(t.vni(switch: s.name, tenant: tenant))")) }
                }
            }
        }
        return (parts, segments)
    }

    static func dotNodes(_ t: Topology) -> String {
        var out = ["graph \"\(t.name)\" {", "  rankdir=LR;", "  node [fontname=\"Helvetica\"];"]
        let (parts, segments) = nodeSwitches(t)
        for n in t.nodes {
            out.append("  subgraph \"cluster_node_\(n.name)\" {")
            out.append("    label=\"node \(n.name) (\(n.underlay))\"; style=bold;")
            for p in parts where p.node == n.name {
                out.append("    \"switch:\(n.name)/\(p.sw)\" [label=\"\(p.sw)\", shape=ellipse, style=filled, fillcolor=lightgrey];")
            }
            for tenant in t.tenants where tenant.hosts.contains(where: { $0.node == n.name }) {
                out.append("    subgraph \"cluster_\(n.name)_\(tenant.name)\" {")
                out.append("      label=\"tenant \(tenant.name)\";")
                for h in tenant.hosts where h.node == n.name { out.append("      \"host:\(tenant.name)/\(h.name)\" [label=\"\(h.name)\", shape=box];") }
                out.append("    }")
            }
            out.append("  }")
        }
        for tenant in t.tenants {
            for h in tenant.hosts {
                for v in h.vnics { out.append("  \"host:\(tenant.name)/\(h.name)\" -- \"switch:\(h.node ?? "")/\(v.over)\" [label=\"\(label(v))\"];") }
            }
        }
        for s in segments {
            out.append("  \"switch:\(s.a)/\(s.sw)\" -- \"switch:\(s.b)/\(s.sw)\" [label=\"VXLAN \(s.label)\", style=dashed];")
        }
        out.append("}")
        return out.joined(separator: "\n")
    }

    static func mermaidNodes(_ t: Topology) -> String {
        func id(_ s: String) -> String { s.replacingOccurrences(of: "/", with: "__") }
        var out = ["graph LR"]
        let (parts, segments) = nodeSwitches(t)
        for n in t.nodes {
            out.append("  subgraph n_\(id(n.name))[\"node \(n.name) (\(n.underlay))\"]")
            for p in parts where p.node == n.name { out.append("    sw_\(id(n.name))__\(id(p.sw))((\(p.sw)))") }
            for tenant in t.tenants where tenant.hosts.contains(where: { $0.node == n.name }) {
                out.append("    subgraph t_\(id(n.name))__\(id(tenant.name))[\"tenant \(tenant.name)\"]")
                for h in tenant.hosts where h.node == n.name { out.append("      h_\(id(tenant.name))__\(id(h.name))[\(h.name)]") }
                out.append("    end")
            }
            out.append("  end")
        }
        for tenant in t.tenants {
            for h in tenant.hosts {
                for v in h.vnics { out.append("  h_\(id(tenant.name))__\(id(h.name)) ---|\"\(label(v))\"| sw_\(id(h.node ?? ""))__\(id(v.over))") }
            }
        }
        for s in segments { out.append("  sw_\(id(s.a))__\(id(s.sw)) -.-|\"VXLAN \(s.label)\"| sw_\(id(s.b))__\(id(s.sw))") }
        return out.joined(separator: "\n")
    }
}
