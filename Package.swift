// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Quiver",
    platforms: [.macOS(.v13)],
    products: [
        // The engine, for other projects' test suites: bring a fabric up, probe it, tear it down.
        // `import QuiverFabric` is the front door; the other modules are there for what they are.
        .library(name: "Quiver", targets: ["QuiverValues", "QuiverNetlink", "QuiverKernel", "QuiverBandwidth", "QuiverProtection", "QuiverVM",
                                           "QuiverProbe", "QuiverTopology", "QuiverFabric", "QuiverDaemon", "QuiverCNI"]),
        .executable(name: "quiver", targets: ["quiver"]),
        .executable(name: "quiver-cni", targets: ["quiver-cni"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // System libraries, found through pkg-config.
        .systemLibrary(name: "CMnl", pkgConfig: "libmnl",
                       providers: [.apt(["libmnl-dev"])]),
        .systemLibrary(name: "CNetlinkRoute", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
        // Tiny C shim: kernel macros and ioctl numbers Swift cannot import.
        .target(name: "CNetlink", dependencies: ["CMnl"]),
        // What the pure values need from C (O_PATH).
        .target(name: "CQuiverSystem"),
        // A guest's jail: what runs between fork and exec (namespaces, pivot_root, identity).
        .target(name: "CGuestJail"),

        // Pure values shared by every layer: names, addresses, rates, the cap model, guest files,
        // checked state directories. Opens no socket.
        .target(name: "QuiverValues", dependencies: ["CQuiverSystem", .product(name: "SystemPackage", package: "swift-system")]),

        // Wire layer: socket owning its fd, codec, ACK/extended-ACK decoding, dumps, namespaces.
        .target(name: "QuiverNetlink", dependencies: [
            "CMnl", "CNetlink", .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // One file per kernel object.
        .target(name: "QuiverKernel", dependencies: ["QuiverValues", "QuiverNetlink", "CNetlink", "CNetlinkRoute"]),
        // Caps: per-VNIC maxbw both ways, per-group aggregate with floors, per-flow caps.
        .target(name: "QuiverBandwidth", dependencies: ["QuiverKernel", "QuiverNetlink", "CNetlink"]),
        // Isolation and link protection: one nftables bridge table per topology, over nfnetlink.
        .target(name: "QuiverProtection", dependencies: ["QuiverKernel", "QuiverNetlink", "CNetlink"]),
        // KVM/qemu guests: taps and vhost-net fds handed to qemu, argv, QMP lifecycle, guest agent.
        .target(name: "QuiverVM", dependencies: ["QuiverKernel", "QuiverNetlink", "CNetlink", "CGuestJail", .product(name: "SystemPackage", package: "swift-system")]),
        // Probes that run inside namespaces: TCP bulk traffic, UDP round trips.
        .target(name: "QuiverProbe", dependencies: ["QuiverKernel", "QuiverNetlink", "CNetlink", .product(name: "SystemPackage", package: "swift-system")]),
        // The topology file format, pure: model, parser, validator, field table, JSON Schema,
        // graph, kernel names. Opens no socket.
        .target(name: "QuiverTopology", dependencies: ["QuiverValues", .product(name: "Yams", package: "Yams")]),
        // The engine and what observes it: kernel state, phased plan, apply, destroy, journal,
        // show, stats, verify. The front door for other projects' tests (`Fabric`).
        .target(name: "QuiverFabric", dependencies: [
            "QuiverTopology", "QuiverKernel", "QuiverNetlink", "QuiverBandwidth", "QuiverProtection", "QuiverProbe", "QuiverVM",
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // Running on a real host: persistent records, the daemon (boot, drift repair, periodic
        // reconcile, guest supervision), metrics over HTTP and for node_exporter, status.
        .target(name: "QuiverDaemon", dependencies: [
            "QuiverFabric", "QuiverTopology", "QuiverKernel", "QuiverNetlink", "QuiverVM", "CNetlink",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The CNI plugin: caps for a container runtime's attachments (docs/CNI.md).
        .target(name: "QuiverCNI", dependencies: ["QuiverBandwidth", "QuiverProtection", "QuiverKernel", "QuiverNetlink", "QuiverValues"]),
        .executableTarget(name: "quiver-cni", dependencies: ["QuiverCNI"]),
        .executableTarget(name: "quiver", dependencies: [
            "QuiverDaemon", "QuiverKernel", "QuiverNetlink", "QuiverBandwidth", "QuiverProtection", "QuiverProbe", "QuiverVM", "QuiverTopology", "QuiverFabric",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Benchmarks run by hand through bench/*; they race Quiver against iproute2 in one run, so
        // they live under bench/, outside the product's Sources/.
        .executableTarget(name: "quiver-bench",
                          dependencies: ["QuiverKernel", "QuiverNetlink", "QuiverBandwidth", "QuiverProtection", "QuiverProbe", "QuiverTopology", "QuiverFabric", "QuiverVM",
                                         "QuiverDaemon", "QuiverTestSupport"],
                          path: "bench/QuiverBench"),

        // The fuzzing harness (scripts/fuzz.sh builds it with -sanitize=fuzzer; an ordinary build
        // is a replayer: `quiver-fuzz TARGET FILE...`).
        .executableTarget(name: "quiver-fuzz", dependencies: ["QuiverTopology", "QuiverFabric", "QuiverProtection"],
                          path: "Tests/QuiverFuzz", exclude: ["Seeds", "topology.dict", "lsan.supp"]),

        // Test helpers shared by the test targets (witness commands).
        .target(name: "QuiverTestSupport", dependencies: ["QuiverValues"], path: "Tests/QuiverTestSupport"),
        .testTarget(name: "QuiverNetlinkTests", dependencies: ["QuiverNetlink", "CNetlink"]),
        .testTarget(name: "QuiverKernelTests", dependencies: ["QuiverKernel", "QuiverNetlink", "CNetlink", "QuiverTestSupport"]),
        .testTarget(name: "QuiverBandwidthTests", dependencies: ["QuiverBandwidth", "QuiverProbe", "QuiverKernel", "QuiverNetlink", "CNetlink"]),
        .testTarget(name: "QuiverProtectionTests", dependencies: ["QuiverProtection", "QuiverProbe", "QuiverKernel", "QuiverNetlink", "CNetlink", "QuiverTestSupport",
                                                                     .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(name: "QuiverVMTests", dependencies: ["QuiverVM", "QuiverKernel", "QuiverNetlink", "QuiverProbe"]),
        .testTarget(name: "QuiverTopologyTests", dependencies: ["QuiverTopology", "QuiverFabric", "QuiverProtection", "QuiverTestSupport", "QuiverBandwidth", "QuiverKernel", "QuiverNetlink", "QuiverProbe", "QuiverVM"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "QuiverDaemonTests", dependencies: ["QuiverDaemon", "QuiverFabric", "QuiverTopology", "QuiverKernel", "QuiverNetlink", "QuiverVM", "CNetlink"]),
        .testTarget(name: "QuiverCNITests", dependencies: ["QuiverCNI", "quiver-cni", "QuiverBandwidth", "QuiverKernel", "QuiverNetlink", "QuiverValues", "QuiverProbe", "QuiverTestSupport"],
                    exclude: ["CRI"]),  // runtime.proto, read by protoc at test time
        // Runs the built `quiver` binary as a user would.
        .testTarget(name: "QuiverCLITests", dependencies: ["quiver", "QuiverKernel", "QuiverNetlink", "QuiverProbe", "QuiverTopology", "QuiverFabric", "QuiverVM", "QuiverTestSupport"]),
    ]
)
