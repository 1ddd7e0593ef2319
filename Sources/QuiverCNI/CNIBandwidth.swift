import Foundation
import QuiverValues

/// An attachment's caps as CONVENTIONS.md's `bandwidth` capability gives them: rates in bits per
/// second, bursts in bits. "Ingress" is what the container receives, "egress" what it sends.
///
/// A burst is taken as the HTB bucket only when it is sane: at least one full frame (1514 bytes)
/// and at most what the rate sends in 100 ms. Anything else — Kubernetes' default of 2³¹−1 bits
/// (256 MiB, 283× a 1 Mbit/s cap over 4 s with the bandwidth plugin) among them — is absurd, and
/// Quiver's ShapingPolicy sizes the bucket, as it does when no burst is given.
public struct CNIBandwidth: Sendable, Equatable {
    public var ingressRate: Bitrate?
    public var ingressBurstBytes: UInt32?
    public var egressRate: Bitrate?
    public var egressBurstBytes: UInt32?
    /// Bursts that were given but absurd, and so replaced (said on stderr).
    public var ignoredBursts: [String] = []

    /// The smallest rate accepted (HTB's own minimum).
    public static let minimumRate: UInt64 = 8_000
    static let minimumBurstBits: UInt64 = 1514 * 8
    static let burstWindowSeconds: Double = 0.1

    public init(ingressRate: Bitrate? = nil, ingressBurstBytes: UInt32? = nil, egressRate: Bitrate? = nil, egressBurstBytes: UInt32? = nil) {
        self.ingressRate = ingressRate
        self.ingressBurstBytes = ingressBurstBytes
        self.egressRate = egressRate
        self.egressBurstBytes = egressBurstBytes
    }

    /// From `runtimeConfig.bandwidth` (the runtime's, per pod) or else the plugin
    /// configuration's own keys; nil when neither sets a rate.
    init?(runtime: [String: Any]?, config: [String: Any]) throws(CNIError) {
        let origin = runtime == nil ? "" : "runtimeConfig.bandwidth."
        let source = try runtime.map(Self.keysInGoCase) ?? config
        func number(_ key: String) throws(CNIError) -> UInt64? {
            guard let v = source[runtime == nil ? key : key.lowercased()] else { return nil }
            // JSON's true and false come as NSNumbers too; their type is C's char.
            guard let n = v as? NSNumber, String(cString: n.objCType) != "c", n.doubleValue >= 0, n.doubleValue == n.doubleValue.rounded(),
                  n.doubleValue <= Double(UInt64.max / 2) else {
                throw CNIError(.invalidConfig, "\(origin)\(key) must be a whole number ≥ 0", details: "bits per second for rates, bits for bursts (CONVENTIONS.md)")
            }
            return n.uint64Value
        }
        func rate(_ key: String) throws(CNIError) -> Bitrate? {
            guard let r = try number(key), r > 0 else { return nil }  // 0: that direction is not capped
            guard r >= Self.minimumRate, r <= Bitrate.maximum.bitsPerSecond else {
                throw CNIError(.invalidConfig, "\(origin)\(key) \(r) is out of range",
                               details: "from \(Self.minimumRate) to \(Bitrate.maximum.bitsPerSecond) bits per second")
            }
            return Bitrate(bitsPerSecond: r)
        }
        let ir = try rate("ingressRate"), er = try rate("egressRate")
        guard ir != nil || er != nil else {
            let ib = try number("ingressBurst") ?? 0, eb = try number("egressBurst") ?? 0
            if ib > 0 || eb > 0 {
                throw CNIError(.invalidConfig, "\(origin)ingressBurst/egressBurst without a rate", details: "give ingressRate or egressRate too")
            }
            return nil
        }
        var ignored: [String] = []
        func burst(_ key: String, _ r: Bitrate?) throws(CNIError) -> UInt32? {
            guard let bits = try number(key), bits > 0, let r else { return nil }
            let most = Double(r.bitsPerSecond) * Self.burstWindowSeconds
            guard bits >= Self.minimumBurstBits, Double(bits) <= most else {
                ignored.append("\(origin)\(key) \(bits) bits (sane: \(Self.minimumBurstBits)–\(UInt64(most)) at \(r)); Quiver sizes it")
                return nil
            }
            return UInt32(bits / 8)
        }
        self.init(ingressRate: ir, ingressBurstBytes: try burst("ingressBurst", ir), egressRate: er, egressBurstBytes: try burst("egressBurst", er))
        ignoredBursts = ignored
    }

    /// The runtime's object with its keys in lower case. Runtimes written in Go send the
    /// capability as Go's encoding/json writes a struct without tags: containerd's CRI plugin
    /// (through go-cni) sends `IngressRate`, `IngressBurst`, `EgressRate`, `EgressBurst`. The
    /// bandwidth plugin reads them because Go's decoder matches keys regardless of case, so
    /// quiver-cni matches them the same way. Two keys that differ only in case are refused:
    /// which one Go would take depends on their order in the text.
    static func keysInGoCase(_ object: [String: Any]) throws(CNIError) -> [String: Any] {
        var folded: [String: Any] = [:]
        for (k, v) in object {
            let lower = k.lowercased()
            guard folded.updateValue(v, forKey: lower) == nil else {
                throw CNIError(.invalidConfig, "runtimeConfig.bandwidth has \(InvalidValue.quoted(lower, limit: 40)) twice, in different cases",
                               details: "give each of ingressRate, ingressBurst, egressRate, egressBurst once")
            }
        }
        return folded
    }
}
