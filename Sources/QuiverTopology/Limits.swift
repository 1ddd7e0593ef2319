import QuiverValues

/// Bounds on what one topology file may hold, so no file makes validation, planning or the
/// kernel's work unbounded.
public enum Limits {
    /// The largest file read (bytes) — about 25,000 VNICs.
    public static let fileBytes = 4 << 20
    /// Nesting of YAML collections.
    public static let depth = 32
    public static let switches = 1024
    public static let tenants = 4096
    public static let vnics = 16384
    public static let expectations = 1024
    /// Nodes of a multi-node file (each node's forwarding tables name every other's VNICs).
    public static let nodes = 256
    public static let flowsPerVNIC = CapGroup.maxFlowsPerMember
    /// The user's words on a guest's kernel command line.
    public static let cmdlineBytes = 1024
    /// Errors reported for one file; the rest are counted.
    public static let errors = 200
    /// VNIC names that cannot be an endpoint's: a namespace's loopback, and names the kernel refuses.
    public static let reservedVNICNames: Set<String> = ["lo", "all", "default"]
}
