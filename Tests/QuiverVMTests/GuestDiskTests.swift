import Foundation
import QuiverKernel
import QuiverVM
import SystemPackage
import Testing

/// Real files, real qemu-img and cloud-localds, in a scratch directory: the overlay over a base
/// that never changes, kept, grown or made anew (saying so); the seed as cloud-init reads it.
@Suite struct GuestDiskTests {
    final class Scratch {
        // Under /run (root's, 0755): a state directory is never trusted below a world-writable /tmp.
        let path = "/run/quiver-disk-\(UUID().uuidString)"
        init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    /// A raw disk of `mib` MiB with an MBR signature and `fill` in its first sector.
    static func base(_ path: String, mib: Int, fill: UInt8) throws {
        var d = Data(repeating: 0, count: mib << 20)
        for i in 0..<446 { d[i] = fill }
        d[510] = 0x55
        d[511] = 0xAA
        try d.write(to: URL(fileURLWithPath: path))
    }

    func sum(_ path: String) throws -> String {
        let r = try Spawn.run(["sha256sum", path], descriptors: [], captureOutput: true)
        return String(String(decoding: r.stdout, as: UTF8.self).prefix(64))
    }

    func virtualSize(_ path: String) throws -> Int64? {
        let r = try Spawn.run(["qemu-img", "info", "-U", "--output=json", path], descriptors: [], captureOutput: true)
        return ((try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])?["virtual-size"] as? NSNumber)?.int64Value
    }

    @Test func overlayIsKeptGrownOrMadeAnewAndTheBaseNeverChanges() throws {
        let s = try Scratch()
        let basePath = s.path + "/base.raw"
        try Self.base(basePath, mib: 8, fill: 1)
        let before = try sum(basePath)
        let state = try #require(try GuestState.open(s.path + "/state", create: true))
        func prepare(size: UInt64?) throws -> String? {
            let fd = try FileDescriptor.open(basePath, .readOnly)
            defer { try? fd.close() }
            return try GuestOverlay.prepare(base: fd, path: basePath, info: try DiskImage.inspect(fd.rawValue), size: size, in: state)
        }
        let overlay = s.path + "/state/overlay.qcow2"
        #expect(try prepare(size: nil) == nil)
        #expect(try virtualSize(overlay) == 8 << 20)
        let inode = try FileManager.default.attributesOfItem(atPath: overlay)[.systemFileNumber] as? Int
        // Unchanged: the same overlay, untouched.
        #expect(try prepare(size: nil) == nil)
        #expect(try FileManager.default.attributesOfItem(atPath: overlay)[.systemFileNumber] as? Int == inode)
        // disk-size grew: grown in place, what the guest wrote kept.
        #expect(try prepare(size: 16 << 20) == "overlay grown from 8388608 to 16777216 bytes (disk-size); what the guest wrote is kept")
        #expect(try virtualSize(overlay) == 16 << 20)
        #expect(try FileManager.default.attributesOfItem(atPath: overlay)[.systemFileNumber] as? Int == inode)
        // disk-size shrank: a new overlay, said so.
        let shrunk = try prepare(size: 8 << 20)
        #expect(shrunk == "overlay made anew: disk-size shrank from 16777216 to 8388608 bytes; what the guest had written to its disk is gone")
        // The base rebuilt in place: a new overlay, said so.
        try Self.base(basePath, mib: 8, fill: 2)
        let rebuilt = try prepare(size: nil)
        #expect(rebuilt?.hasPrefix("overlay made anew: its image \(basePath) changed since the overlay was made") == true, "\(rebuilt ?? "nil")")
        // Another image: a new overlay naming both.
        let other = s.path + "/other.raw"
        try Self.base(other, mib: 8, fill: 3)
        let fd = try FileDescriptor.open(other, .readOnly)
        defer { try? fd.close() }
        let moved = try GuestOverlay.prepare(base: fd, path: other, info: try DiskImage.inspect(fd.rawValue), size: nil, in: state)
        #expect(moved == "overlay made anew: its image changed from \(basePath) to \(other); what the guest had written to its disk is gone")
        // Through all of it, qemu-img never wrote a base.
        try Self.base(s.path + "/again.raw", mib: 8, fill: 2)
        #expect(try sum(basePath) == sum(s.path + "/again.raw"))
        #expect(try sum(basePath) != before)  // (it changed only because the test rebuilt it)
    }

    /// A state directory holds only Quiver's entries: a planted file or link is refused.
    @Test func aStateDirectoryWithForeignEntriesIsRefused() throws {
        let s = try Scratch()
        _ = try GuestState.open(s.path + "/state", create: true)
        symlink("/etc/shadow", s.path + "/state/overlay.qcow2")
        #expect(throws: (any Error).self) { try GuestState.open(s.path + "/state", create: false) }
        unlink(s.path + "/state/overlay.qcow2")
        try Data().write(to: URL(fileURLWithPath: s.path + "/state/notes"))
        let e = #expect(throws: (any Error).self) { try GuestState.open(s.path + "/state", create: false) }
        #expect("\(e!)".contains("/state/notes\" is not something Quiver keeps in a guest's state directory; it is not reused"))
    }

    /// The seed cloud-localds makes is an ISO 9660 volume `cidata` with exactly the three files,
    /// each as Quiver wrote it.
    @Test func seedIsACidataVolumeWithTheThreeFiles() throws {
        let s = try Scratch()
        var spec = VMSpec(name: "lab-vm", kernel: nil,
                          nics: [VMNIC(tap: "lab-vm-eth0", mac: try MACAddress("02:00:00:00:00:51"), guestDevice: "eth0",
                                       addresses: [try IPPrefix("10.50.0.5/24"), try IPPrefix("fd50::5/64")])])
        spec.image = ImageSpec(path: "/base")
        let seed = CloudSeed(spec, seed: SeedSpec(hostname: "vm", sshAuthorizedKeys: ["ssh-ed25519 AAAA k"]), userFile: Data("#cloud-config\nruncmd: [true]\n".utf8))
        let image = try seed.image()
        try image.write(to: URL(fileURLWithPath: s.path + "/seed.iso"))
        #expect(String(decoding: image[32808..<32814], as: UTF8.self) == "cidata", "the volume label cloud-init looks for")
        let list = try Spawn.run(["isoinfo", "-i", s.path + "/seed.iso", "-R", "-f"], descriptors: [], captureOutput: true)
        #expect(Set(String(decoding: list.stdout, as: UTF8.self).split(separator: "\n")) == ["/meta-data", "/network-config", "/user-data"])
        for (name, content) in [("meta-data", seed.metaData), ("network-config", seed.networkConfig), ("user-data", seed.userData)] {
            let x = try Spawn.run(["isoinfo", "-i", s.path + "/seed.iso", "-R", "-x", "/" + name], descriptors: [], captureOutput: true)
            #expect(x.stdout == content, "\(name)")
        }
    }
}
