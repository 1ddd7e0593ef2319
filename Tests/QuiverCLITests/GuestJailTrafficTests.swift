import Foundation
import QuiverNetlink
import QuiverTestSupport
import QuiverVM
import Testing

/// Guests confined like a SmartOS zone, read from outside as an operator would (`/proc/PID/…`,
/// `nsenter`, the cgroup files): two busybox guests of one topology in a fabric namespace the
/// test owns, one with `cpu-cap: 50`.
@Suite(.serialized) struct GuestJailTrafficTests {
    func status(_ pid: String) throws -> [String: String] {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        return Dictionary(text.split(separator: "\n").compactMap { line in
            line.firstIndex(of: ":").map { (String(line[..<$0]), line[line.index(after: $0)...].trimmingCharacters(in: .whitespaces)) }
        }, uniquingKeysWith: { a, _ in a })
    }

    func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }

    /// What `sh -c SCRIPT` prints inside the mount namespace of `pid` (the host's sh, bound in
    /// with /usr).
    func inside(_ pid: String, _ script: String) throws -> String {
        try witnessText(["nsenter", "-t", pid, "-m", "/usr/bin/sh", "-c", script]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func guestsRunJailedCappedAndLeaveNothing() throws {
        try buildTestGuest()
        let guest = (kernel: repositoryRoot + "/.build-guest/vmlinuz", initrd: repositoryRoot + "/.build-guest/initrd.img")
        let name = "j" + String(UUID().uuidString.prefix(3)).lowercased()
        let host = { (h: String, ip: Int, extra: String) in
            """
                  - name: \(h)
                    kind: vm
                    kernel: \(guest.kernel)
                    initrd: \(guest.initrd)
                    cmdline: ipv6.disable=1
                    memory: 128\(extra)
                    vnics: [{name: eth0, over: sw0, ips: [10.32.0.\(ip)/24]}]
            """
        }
        let text = "name: \(name)\nswitches:\n  - name: sw0\ntenants:\n  - name: red\n    hosts:\n"
            + host("g1", 31, "\n        cpu-cap: 50") + "\n" + host("g2", 32, "") + "\n"
        let file = NSTemporaryDirectory() + "quiver-\(name).yaml"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fabricName = "qcj-" + String(UUID().uuidString.prefix(6)).lowercased()
        _ = try NetworkNamespace.create(named: fabricName)
        defer { try? NetworkNamespace.delete(named: fabricName) }
        let fab = ["--fabric-netns", fabricName]
        defer { _ = try? quiver(["destroy", name] + fab) }

        let apply = try quiver(["apply", file] + fab)
        try #require(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
        let pids = try ["g1", "g2"].map { try read("/run/quiver/vms/\(name)/\($0)/qemu.pid") }
        var uids: [String] = []
        for (h, pid) in zip(["g1", "g2"], pids) {
            let s = try status(pid)
            let uid = s["Uid"]?.split(separator: "\t").first.map(String.init) ?? "0"
            uids.append(uid)
            #expect(uid != "0" && s["Gid"]?.split(separator: "\t").first != "0", "\(h): \(s["Uid"] ?? "?") \(s["Gid"] ?? "?")")
            #expect(Set(s["Uid"]?.split(separator: "\t") ?? []).count == 1, "real, effective, saved and fs uid are one")
            for cap in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] { #expect(s[cap] == "0000000000000000", "\(h) \(cap) \(s[cap] ?? "?")") }
            #expect(s["NoNewPrivs"] == "1" && s["Seccomp"] == "2", "\(h): \(s["NoNewPrivs"] ?? "?") \(s["Seccomp"] ?? "?")")
            for ns in ["mnt", "pid", "net", "ipc", "uts"] {
                let mine = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(ns)")
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(ns)") != mine, "\(h) shares the \(ns) namespace")
            }
            // Its network namespace holds nothing but lo.
            let links = try witnessText(["nsenter", "-t", pid, "-n", "ip", "-o", "link"]).split(separator: "\n")
            #expect(links.count == 1 && links[0].contains(": lo:"), "\(links)")
            // Its mount namespace holds none of the host's secrets and no other guest's files.
            let other = h == "g1" ? "g2" : "g1"
            #expect(try inside(pid, "test -e /usr/bin/qemu-system-x86_64 && echo there") == "there", "the check itself sees what is there")
            for path in ["/etc/shadow", "/etc", "/root", "/home", "/run/quiver/vms/\(name)/\(other)", "/run", "/tmp", "/dev/net/tun", "/dev/vhost-net", "/sys"] {
                #expect(try inside(pid, "test -e \(path) && echo there || echo absent") == "absent", "\(h) sees \(path)")
            }
            #expect(try inside(pid, "touch /x 2>/dev/null && echo wrote || echo refused") == "refused", "the jail's root is read-only")
            let dev = try witnessText(["nsenter", "-t", pid, "-m", "/usr/bin/ls", "/dev"]).split(separator: "\n").sorted()
            #expect(dev == ["null", "urandom", "zero"], "\(h): /dev holds \(dev)")
            // Its cgroups: the memory limit (RAM + qemu's overhead), the CPU quota, a task ceiling.
            let cg = "quiver/\(name)-\(h)"
            #expect(try read("/proc/\(pid)/cgroup").contains("memory:/\(cg)"))
            #expect(try read("/sys/fs/cgroup/memory/\(cg)/memory.limit_in_bytes") == String((128 + GuestCgroup.overheadMiB) << 20))
            #expect(try read("/sys/fs/cgroup/cpu/\(cg)/cpu.cfs_quota_us") == (h == "g1" ? "50000" : "-1"))
            #expect(try read("/sys/fs/cgroup/pids/\(cg)/pids.max") == String(GuestCgroup.pidsMax))
        }
        #expect(Set(uids).count == 2, "each guest has its own uid: \(uids)")
        let list = try quiver(["vm", "list"])
        #expect(list.stdout.contains("\(name)/g1: jailed: uid \(uids[0]), ns mnt+pid+ipc+uts+net, seccomp, mem \(128 + GuestCgroup.overheadMiB)M, cpu 50%"),
                "\(list.stdout)")

        // cpu-cap 50 on a guest that spins: qemu's CPU use over 5 s, from its cgroup's own
        // counter, is half a CPU ±10 %.
        let agent = try GuestAgent.waitReady(socketPath: "/run/quiver/vms/\(name)/g1/agent.sock", timeout: 120)
        _ = try agent.run("(while :; do :; done) >/dev/null 2>&1 &", timeout: 10)
        Thread.sleep(forTimeInterval: 1)
        let usage = "/sys/fs/cgroup/cpuacct/quiver/\(name)-g1/cpuacct.usage"
        let u0 = UInt64(try read(usage)) ?? 0, t0 = Date()
        Thread.sleep(forTimeInterval: 5)
        let used = Double((UInt64(try read(usage)) ?? 0) - u0) / 1e9 / Date().timeIntervalSince(t0)
        #expect(abs(used - 0.5) <= 0.05, "qemu used \(used) CPUs under cpu-cap 50")

        let destroy = try quiver(["destroy", name] + fab)
        #expect(destroy.status == 0, "\(destroy.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "/run/quiver/vms/\(name)"))
        for ctrl in ["cpu", "cpuacct", "memory", "pids"] {
            for h in ["g1", "g2"] { #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(ctrl)/quiver/\(name)-\(h)")) }
        }
        let left = try witnessText(["ps", "-eo", "uid=,stat="]).split(separator: "\n")
            .filter { line in uids.contains { line.trimmingCharacters(in: .whitespaces).hasPrefix($0 + " ") } && !line.contains("Z") }
        #expect(left.isEmpty, "processes of the guests' uids: \(left)")
        #expect(try GuestIdentity.held(by: "\(name)-g1") == nil && GuestIdentity.held(by: "\(name)-g2") == nil)
    }
}
