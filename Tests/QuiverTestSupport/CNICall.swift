import Foundation
import QuiverValues

/// One CNI plugin call as a runtime makes it: the plugin run in the node's network namespace
/// (`nsenter`, started by ``Spawn``, as quiver-cni starts its IPAM plugin), `CNI_*` in its environment, the
/// configuration on stdin. Tests and bench/cni drive Debian's plugins and quiver-cni with it.
public struct CNICall {
    public var status: Int32
    /// stdout as a JSON object (empty when it printed none).
    public var result: [String: Any]
    public var stderr: String

    public static let pluginDirectory = "/usr/lib/cni"

    public init(_ plugin: String, _ command: String, node: String, pod: String?, containerID: String, ifname: String = "eth0",
                config: [String: Any]) throws {
        var env = ["CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_IFNAME": ifname,
                   "CNI_PATH": Self.pluginDirectory, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        if let pod { env["CNI_NETNS"] = "/run/netns/\(pod)" }
        let run = try Spawn.run(["/usr/bin/nsenter", "--net=/run/netns/\(node)", plugin], descriptors: [], captureOutput: true,
                                environment: env, input: [UInt8](try JSONSerialization.data(withJSONObject: config)))
        status = run.status
        result = (try? JSONSerialization.jsonObject(with: run.stdout) as? [String: Any]) ?? [:]
        stderr = run.stderr
    }

    /// A bridge result's host-side veth (the interface without a sandbox).
    public static func hostVeth(_ result: [String: Any]) -> String? {
        (result["interfaces"] as? [[String: Any]])?.first { $0["sandbox"] == nil && ($0["name"] as? String)?.hasPrefix("veth") == true }?["name"] as? String
    }

    /// A result's first address, without its prefix length.
    public static func address(_ result: [String: Any]) -> String {
        String((((result["ips"] as? [[String: Any]])?.first?["address"] as? String) ?? "").split(separator: "/").first ?? "")
    }
}
