import Foundation
import QuiverValues

/// A container image made here from a local root filesystem, so a runtime that wants images
/// (containerd's CRI plugin: a pod's sandbox and its containers) runs without downloading any:
/// an OCI image layout with one uncompressed layer (GNU tar of the directory), the image's
/// configuration and its manifest, tarred as `ctr images import` reads it. Digests are
/// sha256sum's.
enum LocalImage {
    /// A root filesystem of busybox-static alone (`sh` and `sleep` linked to it) at `path`,
    /// with the directories a runtime mounts over.
    static func busyboxRoot(at path: String) throws {
        let fm = FileManager.default
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] { try fm.createDirectory(atPath: "\(path)/\(d)", withIntermediateDirectories: true) }
        try fm.copyItem(atPath: "/bin/busybox", toPath: "\(path)/bin/busybox")
        for a in ["sh", "sleep"] { try fm.createSymbolicLink(atPath: "\(path)/bin/\(a)", withDestinationPath: "busybox") }
    }

    /// Writes the archive to `archive` and returns it. `entrypoint` is what the image runs
    /// when a runtime gives no command (a pod sandbox's pause process).
    static func build(rootfs: String, name: String, entrypoint: [String], work: String, archive: String) throws -> String {
        let layout = "\(work)/layout", blobs = "\(layout)/blobs/sha256"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        func run(_ argv: [String]) throws -> Data {
            let o = try Spawn.run(argv, descriptors: [], captureOutput: true)
            guard o.status == 0 else { throw CRIFailed(method: argv[0], message: o.stderr) }
            return o.stdout
        }
        /// Moves `file` into the blobs, named by its digest; returns (digest, size).
        func blob(_ file: String) throws -> (String, Int) {
            let sum = String(decoding: try run(["/usr/bin/sha256sum", file]), as: UTF8.self).prefix(64)
            let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int ?? 0
            try FileManager.default.moveItem(atPath: file, toPath: "\(blobs)/\(sum)")
            return ("sha256:\(sum)", size)
        }
        func json(_ object: Any, _ file: String) throws -> (String, Int) {
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: file))
            return try blob(file)
        }
        _ = try run(["/bin/tar", "--create", "--file", "\(work)/layer.tar", "--numeric-owner", "--directory", rootfs, "."])
        let (layer, layerSize) = try blob("\(work)/layer.tar")
        let (config, configSize) = try json(["architecture": "amd64", "os": "linux", "config": ["Entrypoint": entrypoint],
                                             "rootfs": ["type": "layers", "diff_ids": [layer]]], "\(work)/config.json")
        let (manifest, manifestSize) = try json([
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": configSize],
            "layers": [["mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layerSize]],
        ], "\(work)/manifest.json")
        try JSONSerialization.data(withJSONObject: [
            "schemaVersion": 2,
            "manifests": [["mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest, "size": manifestSize,
                           "annotations": ["io.containerd.image.name": name]]],
        ] as [String: Any]).write(to: URL(fileURLWithPath: "\(layout)/index.json"))
        try #"{"imageLayoutVersion": "1.0.0"}"#.write(toFile: "\(layout)/oci-layout", atomically: true, encoding: .utf8)
        _ = try run(["/bin/tar", "--create", "--file", archive, "--directory", layout, "."])
        return archive
    }
}
