import CNetlink
import QuiverNetlink

/// The netfilter hook a base chain hangs on.
public enum NFTHook: Sendable, Equatable {
    case prerouting, input, forward, output, postrouting
    /// netdev family only: a device's ingress (frames the device receives).
    case ingress
    /// netdev family only: a device's egress (frames the device transmits).
    case egress
    /// arp family only: ARP packets the host receives (`hook input` in nft's arp family).
    case arpIn

    var number: UInt32 {
        switch self {
        case .prerouting: return UInt32(NF_INET_PRE_ROUTING.rawValue)
        case .input: return UInt32(NF_INET_LOCAL_IN.rawValue)
        case .forward: return UInt32(NF_INET_FORWARD.rawValue)
        case .output: return UInt32(NF_INET_LOCAL_OUT.rawValue)
        case .postrouting: return UInt32(NF_INET_POST_ROUTING.rawValue)
        case .ingress: return UInt32(NF_NETDEV_INGRESS.rawValue)
        case .egress: return UInt32(NF_NETDEV_EGRESS.rawValue)
        case .arpIn: return 0  // NF_ARP_IN
        }
    }
}

/// Requests for chains. Equivalent to `nft add chain`.
public enum NFTChainRequest {
    /// A base chain: `nft add chain FAMILY TABLE NAME { type filter hook HOOK [devices = { D, … }] priority P; policy accept; }`.
    /// `devices` (netdev family) are names: the kernel hooks each device of that name whenever it
    /// exists, including ones created after the chain (Linux 6.16 and later).
    public static func addBase(_ family: NFTFamily, table: String, _ name: String, hook: NFTHook, priority: Int32,
                               devices: [String] = [], policyAccept: Bool = true) -> NetlinkRequest {
        var m = nftMessage(NFT_MSG_NEWCHAIN, family: family, flags: NLM_F_CREATE)
        m.put(NFTA_CHAIN_TABLE.rawValue, string: table)
        m.put(NFTA_CHAIN_NAME.rawValue, string: name)
        m.nest(NFTA_CHAIN_HOOK.rawValue) { h in
            h.put(NFTA_HOOK_HOOKNUM.rawValue, be32: hook.number)
            h.put(NFTA_HOOK_PRIORITY.rawValue, be32: UInt32(bitPattern: priority))
            if !devices.isEmpty {
                h.nest(NFTA_HOOK_DEVS.rawValue) { d in
                    for dev in devices { d.put(NFTA_DEVICE_NAME.rawValue, string: dev) }
                }
            }
        }
        m.put(NFTA_CHAIN_POLICY.rawValue, be32: UInt32(policyAccept ? NF_ACCEPT : NF_DROP))
        m.put(NFTA_CHAIN_TYPE.rawValue, string: "filter")
        return NetlinkRequest(m, RequestContext("create nftables chain", "\(table) \(name)"))
    }

    /// A regular chain, reached by jump/goto: `nft add chain FAMILY TABLE NAME`.
    public static func add(_ family: NFTFamily, table: String, _ name: String) -> NetlinkRequest {
        var m = nftMessage(NFT_MSG_NEWCHAIN, family: family, flags: NLM_F_CREATE)
        m.put(NFTA_CHAIN_TABLE.rawValue, string: table)
        m.put(NFTA_CHAIN_NAME.rawValue, string: name)
        return NetlinkRequest(m, RequestContext("create nftables chain", "\(table) \(name)"))
    }
}

/// Requests for rules. Equivalent to `nft add rule FAMILY TABLE CHAIN ...`.
public enum NFTRuleRequest {
    /// Appends a rule made of `expressions` to the chain.
    public static func add(_ family: NFTFamily, table: String, chain: String, _ expressions: [NFTExpression],
                           comment: String? = nil) -> NetlinkRequest {
        var m = nftMessage(NFT_MSG_NEWRULE, family: family, flags: NLM_F_CREATE | NLM_F_APPEND)
        m.put(NFTA_RULE_TABLE.rawValue, string: table)
        m.put(NFTA_RULE_CHAIN.rawValue, string: chain)
        m.nest(NFTA_RULE_EXPRESSIONS.rawValue) { list in
            for e in expressions { e.encode(into: &list) }
        }
        if let c = comment { m.put(NFTA_RULE_USERDATA.rawValue, bytes: nftComment(c)) }
        return NetlinkRequest(m, RequestContext("create nftables rule", "\(table) \(chain)" + (comment.map { " (\($0))" } ?? "")))
    }
}
