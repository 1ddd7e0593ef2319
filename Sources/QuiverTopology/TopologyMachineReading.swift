import Foundation
import QuiverValues
import Yams

/// How the parser reads what a `kind: vm` host boots: its kernel or image, the overlay's size,
/// firmware, cloud-init seed and agent. Each value is checked for its own shape here; what needs
/// the host (the files, the image's format and size, OVMF) is the validator's.
extension TopologyParser {
    mutating func parseMachine(_ m: Node.Mapping, host: String, at: SourceLocation) -> Topology.Machine? {
        let dir = URL(fileURLWithPath: file).absoluteURL.deletingLastPathComponent()
        func path(_ key: String) -> String? {
            guard let n = m[key: key], let s = scalar(n, key) else { return nil }
            guard !s.isEmpty else {
                report(TopologyError(loc(n), "`\(key)` is empty", hint: "name a file, relative to the topology file"))
                return nil
            }
            return s.hasPrefix("/") ? s : dir.appendingPathComponent(s).standardized.path
        }
        func number(_ key: String, _ range: ClosedRange<Int>, _ def: Int) -> Int {
            guard let n = m[key: key], let s = scalar(n, key) else { return def }
            guard let v = DecimalText.integer(s).map(Int.init), range.contains(v) else {
                report(TopologyError(loc(n), "\(key) \(InvalidValue.quoted(s)) must be a number from \(range.lowerBound) to \(range.upperBound)"))
                return def
            }
            return v
        }
        func choice(_ key: String, _ words: [String]) -> String? {
            guard let n = m[key: key], let s = scalar(n, key) else { return nil }
            guard words.contains(s) else {
                report(TopologyError(loc(n), "unknown \(key) \(InvalidValue.quoted(s))", hint: "use " + words.joined(separator: ", ") + suggestion(s, words)))
                return nil
            }
            return s
        }
        let kernel = path("kernel"), image = path("image")
        guard kernel != nil || image != nil || m[key: "kernel"] != nil || m[key: "image"] != nil else {
            report(TopologyError(at, "vm host \(host) has neither `kernel` nor `image`",
                                 hint: "add `image: path/to/disk.qcow2` (scripts/build-debian-guest.sh builds one) or `kernel: path/to/vmlinuz` (scripts/build-test-guest.sh)"))
            return nil
        }
        var machine = Topology.Machine(kernel: kernel, initrd: path("initrd"), cmdline: m[key: "cmdline"].flatMap { scalar($0, "cmdline") } ?? "",
                                       disk: path("disk"), memoryMiB: number("memory", 64...65536, 256), cpus: number("cpus", 1...64, 1),
                                       accel: choice("accel", ["auto", "kvm", "tcg"]) ?? "auto",
                                       cpuCap: m[key: "cpu-cap"] == nil ? nil : number("cpu-cap", 1...6400, 100))
        for (k, _) in m { if let key = k.string { machine.keyLocations[key] = loc(k) } }
        machine.image = image
        if let n = m[key: "disk-size"], let s = scalar(n, "disk-size") {
            if image == nil {
                report(TopologyError(loc(n), "`disk-size` is the size of the overlay of an `image`; \(host) has no image", hint: "add `image:` or remove `disk-size`"))
            } else if let bytes = Self.diskSize(s) {
                machine.diskSize = bytes
            } else {
                report(TopologyError(loc(n), "disk-size \(InvalidValue.quoted(s)) is not a size", hint: "write a number with K, M, G or T (powers of 1024), e.g. 8G; from 1M to 64T"))
            }
        }
        machine.firmware = choice("firmware", ["bios", "uefi"])
        machine.cloudInit = m[key: "cloud-init"].flatMap { boolean($0, "cloud-init") } ?? (image != nil)
        machine.agent = choice("agent", ["qga", "quiver", "none"]) ?? (image != nil ? "qga" : "quiver")
        machine.restart = choice("restart", ["always", "on-failure", "never"]).flatMap(Topology.RestartPolicy.init(rawValue:)) ?? .onFailure
        machine.userData = path("user-data")
        for key in ["user-data", "ssh-authorized-keys"] where m[key: key] != nil && !machine.cloudInit {
            report(TopologyError(loc(m[key: key]!), "`\(key)` reaches the guest through its cloud-init seed, and \(host) has `cloud-init: false`",
                                 hint: "remove `\(key)` or set `cloud-init: true`"))
        }
        if let n = m[key: "ssh-authorized-keys"] {
            for item in sequence(n, "ssh-authorized-keys") {
                guard let key = scalar(item, "ssh-authorized-keys") else { continue }
                if let problem = Self.sshKeyProblem(key) {
                    report(TopologyError(loc(item), "ssh-authorized-keys: \(InvalidValue.quoted(String(key.prefix(40)))) \(problem)",
                                         hint: "paste one line of a .pub file: TYPE BASE64 [COMMENT]"))
                } else {
                    machine.sshAuthorizedKeys.append(key)
                }
            }
        }
        return machine
    }

    /// `true`/`false` (YAML's other spellings of them are refused: one way to write each).
    mutating func boolean(_ n: Node, _ key: String) -> Bool? {
        guard let s = scalar(n, key) else { return nil }
        switch s {
        case "true": return true
        case "false": return false
        default:
            report(TopologyError(loc(n), "\(key) \(InvalidValue.quoted(s)) must be true or false"))
            return nil
        }
    }

    /// `8G`, `512M`, `1073741824`: bytes, with K/M/G/T as powers of 1024; from 1 MiB to 64 TiB.
    static func diskSize(_ s: String) -> UInt64? {
        var digits = Substring(s)
        var unit: UInt64 = 1
        if let last = s.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][last.uppercased()] {
            unit = 1 << (10 * UInt64(power))
            digits = digits.dropLast()
        }
        guard let n = DecimalText.integer(digits), n > 0 else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow, bytes >= 1 << 20, bytes <= 64 << 40 else { return nil }
        return bytes
    }

    /// Why an `ssh-authorized-keys` entry is not one OpenSSH public key line, or nil.
    static func sshKeyProblem(_ key: String) -> String? {
        guard key.utf8.count <= 16384 else { return "is longer than 16 KiB" }
        if key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "holds a control character (a key is one line)" }
        let words = key.split(separator: " ", omittingEmptySubsequences: true)
        let types = ["ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                     "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"]
        guard words.count >= 2, types.contains(String(words[0])) else { return "does not start with a key type (\(types.prefix(3).joined(separator: ", ")), …)" }
        guard Data(base64Encoded: String(words[1])) != nil else { return "has no base64 key after its type" }
        return nil
    }
}
