import CGuestJail
import Foundation
import Glibc
import QuiverKernel
import SystemPackage

/// A guest's cloud-init NoCloud seed: an ISO 9660 volume labelled `cidata` holding `meta-data`,
/// `network-config` (version 2) and `user-data`, attached read-only.
///
/// Every file is written as JSON (which YAML reads as it is), so no value from the topology —
/// a host name, an SSH key, an address — can change the structure of the document. The user's
/// `user-data` file is never parsed or rewritten: it travels next to Quiver's own cloud-config
/// as a part of a MIME multipart message, base64-encoded, so no byte of it can end its part.
/// The volume is made by `cloud-localds` (cloud-image-utils, over genisoimage), fed through
/// descriptors, its image read from its standard output.
public struct CloudSeed: Sendable, Equatable {
    public var metaData: Data
    public var networkConfig: Data
    public var userData: Data

    /// The seed of `spec` (which has a ``SeedSpec``), with `userFile` the content of its
    /// `user-data` file, if any.
    public init(_ spec: VMSpec, seed: SeedSpec, userFile: Data? = nil) {
        networkConfig = Self.json(Self.network(spec.nics))
        // The instance id changes exactly when what the guest is told changes: cloud-init then
        // applies the network again, as on a first boot.
        let id = StableHash.fnv1a64(String(decoding: networkConfig, as: UTF8.self) + "\0" + seed.hostname + "\0" + seed.sshAuthorizedKeys.joined(separator: "\n"))
        metaData = Self.json(["instance-id": "quiver-\(spec.name)-" + String(id, radix: 16), "local-hostname": seed.hostname])
        var config: [String: Any] = [:]
        if !seed.sshAuthorizedKeys.isEmpty { config["ssh_authorized_keys"] = seed.sshAuthorizedKeys }
        let quiver = Data("#cloud-config\n".utf8) + Self.json(config)
        userData = userFile.map { Self.multipart([("quiver.cfg", "text/cloud-config", quiver), ("user-data", "text/plain", $0)]) } ?? quiver
    }

    /// `network-config` version 2: each NIC matched by its MAC, named as in the file, with its
    /// addresses and, where the file has one, its gateway for that family.
    static func network(_ nics: [VMNIC]) -> [String: Any] {
        var ethernets: [String: Any] = [:]
        for n in nics {
            var e: [String: Any] = ["match": ["macaddress": n.mac.description], "set-name": n.guestDevice]
            let addresses = n.allAddresses
            if addresses.isEmpty { e["dhcp4"] = false } else { e["addresses"] = addresses.map(\.description) }
            if let g = n.gateway { e[g.isV4 ? "gateway4" : "gateway6"] = g.description }
            ethernets[n.guestDevice] = e
        }
        return ["version": 2, "ethernets": ethernets]
    }

    static func json(_ object: [String: Any]) -> Data {
        // Only strings, numbers, booleans and collections of them: serialization cannot fail.
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])).map { $0 + Data("\n".utf8) } ?? Data("{}\n".utf8)
    }

    /// A MIME multipart/mixed message of `parts` (file name, content type, content), each
    /// base64-encoded. The boundary is a fixed word the base64 alphabet cannot spell (`=`
    /// around a `-`), so no content can close a part early.
    static func multipart(_ parts: [(name: String, type: String, content: Data)]) -> Data {
        let boundary = "==quiver-seed-boundary=="
        var out = "Content-Type: multipart/mixed; boundary=\"\(boundary)\"\r\nMIME-Version: 1.0\r\n\r\n"
        for p in parts {
            out += "--\(boundary)\r\nContent-Type: \(p.type); charset=\"utf-8\"\r\nMIME-Version: 1.0\r\n"
            out += "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"\(p.name)\"\r\n\r\n"
            out += p.content.base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed]) + "\r\n"
        }
        return Data((out + "--\(boundary)--\r\n").utf8)
    }

    /// The ISO 9660 image, made by `cloud-localds`: each file goes in through a sealed memfd,
    /// the image comes out on its standard output.
    public func image(cloudLocalds: String = "cloud-localds") throws -> Data {
        var fds: [FileDescriptor] = []
        defer { for f in fds { try? f.close() } }
        for (name, content) in [("user-data", userData), ("meta-data", metaData), ("network-config", networkConfig)] {
            fds.append(try VMLauncher.sealedCopy(content, name: name))
        }
        let argv = [cloudLocalds, "--network-config=/proc/self/fd/5", "-", "/proc/self/fd/3", "/proc/self/fd/4"]
        let o: Spawn.Outcome
        do { o = try Spawn.run(argv, descriptors: fds.map(\.rawValue), captureOutput: true, limit: 16 << 20) } catch {
            throw VMError(error.errno == ENOENT ? "cloud-localds is not installed (apt install cloud-image-utils genisoimage)" : "cloud-localds cannot be started: \(error)")
        }
        guard o.status == 0, o.stdout.count >= 32768 else {
            throw VMError("cloud-localds failed (status \(o.status)): \(o.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return o.stdout
    }
}
