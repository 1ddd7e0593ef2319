import Foundation
import QuiverKernel
import QuiverVM
import Testing

/// No value that reaches qemu can add an option: every `key=value,…` string of the command line
/// is parsed here the way qemu parses it (util/qemu-option.c: a name runs to `=` or `,`, a value
/// to a `,` that is not doubled, `,,` is a comma; a first element without `=` is the implied
/// value), and must hold exactly the keys Quiver wrote, each value the one it was given. Paths
/// from the topology never reach qemu at all: the guest's files are descriptors.
@Suite struct QemuOptionInjectionTests {
    /// qemu's QemuOpts parser. `implied`: the name of an implicit first option, if the option
    /// has one.
    static func qemuOpts(_ s: String, implied: String?) -> [(String, String)] {
        var out: [(String, String)] = []
        var rest = Substring(s)
        var first = true
        func value() -> String {
            var v = ""
            while let c = rest.first {
                if c == "," {
                    if rest.dropFirst().first == "," { v.append(","); rest = rest.dropFirst(2); continue }
                    break
                }
                v.append(c)
                rest = rest.dropFirst()
            }
            return v
        }
        while !rest.isEmpty {
            let nameEnd = rest.firstIndex { $0 == "=" || $0 == "," } ?? rest.endIndex
            if nameEnd == rest.endIndex || rest[nameEnd] == "," {
                if first, let implied {
                    out.append((implied, value()))
                } else {
                    out.append((String(rest[..<nameEnd]), "on"))
                    rest = rest[nameEnd...]
                }
            } else {
                let name = String(rest[..<nameEnd])
                rest = rest[rest.index(after: nameEnd)...]
                out.append((name, value()))
            }
            if rest.first == "," { rest = rest.dropFirst() }
            first = false
        }
        return out
    }

    static let hostile = [
        "g,file=/etc/shadow", "a=b", "x,,y", "quote\"d", "it's", "new\nline", ",", ",,", "=", "tab\there", "end,",
    ]

    func argv(name: String, directory: String, cmdline: String = "quiet", disk: Bool = true) throws -> [String] {
        let spec = VMSpec(name: name, kernel: "/k/vmlinuz,if=none", initrd: "/k/initrd,format=qcow2", cmdline: cmdline,
                          disk: "/d/disk.raw,file=/etc/shadow", memoryMiB: 128, cpus: 1, accel: .tcg,
                          nics: [VMNIC(tap: "t", mac: try MACAddress("02:00:00:00:00:31"), queues: 2, guestDevice: "eth0")])
        return QemuCommand.argv(spec, files: .init(directory: directory),
                                fileFDs: .init(kernel: 3, initrd: 4, disk: disk ? [5, 6] : []), tapFDs: [[7, 8]], vhostFDs: nil, accel: .tcg)
    }

    func options(_ a: [String], _ flag: String) -> [String] {
        a.indices.filter { a[$0] == flag }.map { a[$0 + 1] }
    }

    @Test(arguments: hostile)
    func aValueCannotAddAnOption(_ bad: String) throws {
        let dir = "/run/quiver/vms/\(bad)/h"
        let a = try argv(name: bad, directory: dir, cmdline: "quiet \(bad) -drive file=/etc/shadow")
        // -name guest=NAME: one key.
        let name = Self.qemuOpts(options(a, "-name")[0], implied: "guest")
        #expect(name.count == 1 && name[0] == ("guest", bad), "\(name)")
        // The chardevs: exactly their keys, the paths as given.
        let chardevs = options(a, "-chardev").map { Self.qemuOpts($0, implied: "backend") }
        #expect(chardevs.count == 3)
        #expect(chardevs[0].map(\.0) == ["backend", "id", "path"] && chardevs[0][2].1 == dir + "/console.log", "\(chardevs[0])")
        for (c, file) in zip(chardevs.dropFirst(), ["agent.sock", "qmp.sock"]) {
            #expect(c.map(\.0) == ["backend", "id", "path", "server", "wait"] && c[2].1 == dir + "/" + file, "\(c)")
        }
        #expect(!a.contains("-qmp"), "QMP is a chardev with a monitor on it, never `-qmp unix:PATH`")
        #expect(options(a, "-mon").map { Self.qemuOpts($0, implied: nil).map { "\($0.0)=\($0.1)" } } == [["chardev=qmp", "mode=control"]])
        // Plain arguments stay one argument each.
        #expect(options(a, "-pidfile") == [dir + "/qemu.pid"])
        #expect(options(a, "-append").count == 1 && options(a, "-append")[0].hasSuffix("quiet \(bad) -drive file=/etc/shadow"))
        // The user's words cannot start an option of qemu's own: -drive appears once, Quiver's.
        #expect(a.filter { $0 == "-drive" }.count == 1)
        let drive = Self.qemuOpts(options(a, "-drive")[0], implied: nil)
        #expect(drive.map(\.0) == ["file", "if", "format"] && drive[0].1 == "/dev/fdset/1", "\(drive)")
        for addFD in options(a, "-add-fd") { #expect(Self.qemuOpts(addFD, implied: nil).map(\.0) == ["fd", "set"]) }
        // NICs: the keys Quiver writes, nothing more.
        #expect(Self.qemuOpts(options(a, "-netdev")[0], implied: "type").map(\.0) == ["type", "id", "fds", "vhost"])
        #expect(Self.qemuOpts(options(a, "-device")[0], implied: "driver").map(\.0) == ["driver", "netdev", "mac", "mq", "vectors"])
    }

    @Test func noPathFromTheTopologyReachesQemu() throws {
        let a = try argv(name: "lab-g1", directory: "/run/quiver/vms/lab/g1")
        for path in ["/k/vmlinuz", "/k/initrd", "/d/disk.raw", "/etc/shadow"] {
            #expect(!a.contains { $0.contains(path) }, "\(path) in \(a)")
        }
        #expect(options(a, "-kernel") == ["/proc/self/fd/3"])
        #expect(options(a, "-initrd") == ["/proc/self/fd/4"])
        // The disk: read-write and read-only descriptors in one fd set (qemu probes read-only first).
        #expect(options(a, "-add-fd") == ["fd=5,set=1", "fd=6,set=1"])
        let noDisk = try argv(name: "lab-g1", directory: "/run/quiver/vms/lab/g1", disk: false)
        #expect(!noDisk.contains("-drive") && !noDisk.contains("-add-fd"))
    }

    @Test func theTestParserReadsQemuEscapes() {
        #expect(Self.qemuOpts("file,id=c,path=/a,,b,x=1", implied: "backend").map { "\($0.0)=\($0.1)" } == ["backend=file", "id=c", "path=/a,b", "x=1"])
        #expect(Self.qemuOpts("file=/a,file=/etc/shadow", implied: nil).map(\.0) == ["file", "file"], "an unescaped comma starts an option")
        #expect(QemuOptions.escape("a,b,,c") == "a,,b,,,,c")
    }

    /// The guest's files must be regular files Quiver can open without following a link, and,
    /// when the topology file is not root's, ones its owner may read (a disk: write).
    @Test func guestFilesAreCheckedOnTheDescriptor() throws {
        let dir = NSTemporaryDirectory() + "quiver-gf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/kernel"
        try Data("not a kernel".utf8).write(to: URL(fileURLWithPath: file))
        chmod(file, 0o600)
        #expect(GuestFile.problem(file, .read, owner: nil) == nil)
        #expect(GuestFile.problem(file, .read, owner: 0) == nil)
        // uid 65534 (nobody) cannot read a 0600 root file.
        #expect(GuestFile.problem(file, .read, owner: 65534)?.contains("uid 65534, who owns the topology file, cannot read it") == true)
        chmod(file, 0o644)
        #expect(GuestFile.problem(file, .read, owner: 65534) == nil)
        #expect(GuestFile.problem(file, .readWrite, owner: 65534)?.contains("cannot read and write it") == true)
        symlink(file, dir + "/link")
        #expect(GuestFile.problem(dir + "/link", .read, owner: nil)?.contains("is a symbolic link (to \(file))") == true)
        #expect(GuestFile.problem(dir, .read, owner: nil) == "it is a directory")
        #expect(GuestFile.problem("/dev/zero", .read, owner: nil) == "it is a character device")
        mkfifo(dir + "/fifo", 0o600)
        #expect(GuestFile.problem(dir + "/fifo", .read, owner: nil) == "it is a FIFO")
        #expect(GuestFile.problem(dir + "/missing", .read, owner: nil) == "it does not exist")
    }
}
