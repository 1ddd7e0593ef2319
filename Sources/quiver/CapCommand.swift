import ArgumentParser
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink

/// `quiver cap`: caps on single devices, outside topology files — the analogue of
/// `dladm set-linkprop -p maxbw=` / `show-linkprop` and `flowadm add-flow`.
struct CapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cap",
        abstract: "Set, show or clear a device's bandwidth cap (both directions).",
        subcommands: [Set.self, Show.self, Clear.self])

    struct Location: ParsableArguments {
        @Argument(help: "The host-side device (veth end, tap) to cap.")
        var device: String

        @Option(help: "Network namespace the device is in (as in `ip netns`); default: the host namespace.")
        var netns: String?

        func open() throws -> (InterfaceName, NetlinkHandle) {
            let name: InterfaceName
            do { name = try InterfaceName(validating: device) } catch { throw ValidationError("\(error)") }
            return (name, try NetlinkHandle(namespace: try netns.map { try namespace($0, option: "--netns") }))
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cap a device each direction; change it in place if it is capped already.",
            discussion: """
            Units as in dladm: K, M, G (bits per second); a bare number is Mbit/s; 0 blocks.
            A flow: --flow NAME,transport=tcp|udp|icmp[,local-ip=P][,remote-ip=P][,local-port=N][,remote-port=N],maxbw=RATE
            "local" is the device's endpoint: the source of what it sends, the destination of what it receives.
            """)

        @OptionGroup var location: Location
        @Option(help: "Ceiling each direction, e.g. 50M.") var maxbw: String
        @Option(help: "Guaranteed rate each direction.") var floor: String?
        @Option(help: "A flow with its own cap (repeatable).") var flow: [String] = []
        @Option(help: "Bucket size in bytes, instead of 10 ms at the rate.") var burst: String?
        @Option(help: "Queue size in bytes, instead of 5 ms at the rate.") var queue: String?

        func run() throws {
            let maxbw = try parseRate(self.maxbw, "--maxbw")
            let floor = try self.floor.map { try parseRate($0, "--floor") }
            let flows = try flow.map(parseFlow)
            let burst = try self.burst.map { try parseBytes($0, "--burst") }
            let queue = try self.queue.map { try parseBytes($0, "--queue") }
            let (device, handle) = try location.open()
            let report = try DeviceCap.set(device, maxbw: maxbw, floor: floor, flows: flows, burst: burst, queueLimit: queue, on: handle)
            print(report.isNoOp ? "\(device): cap unchanged (maxbw \(maxbw))"
                  : "\(device): maxbw \(maxbw)\(floor.map { ", floor \($0)" } ?? "") — created \(report.created), changed \(report.changed), deleted \(report.deleted)")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a device's cap, class by class, with counters.")
        @OptionGroup var location: Location
        @Option(name: .short, help: ArgumentHelp("Output format: table or json.", valueName: "format"))
        var output: OutputFormat = .table

        func run() throws {
            let (device, handle) = try location.open()
            guard let g = try DeviceCap.current(device, on: handle) else {
                throw ValidationError("\(device) has no Quiver cap (set one with `quiver cap set \(device) --maxbw RATE`)")
            }
            let usage = try Shaper(handle: handle).status(g)
            switch output {
            case .json: print(try renderJSON(usage))
            case .table:
                var t = Table(["DIRECTION", "CLASS", "MAXBW", "RATE", "QUEUE", "BYTES", "PKTS", "DROPS", "OVERLIMITS", "BACKLOG"])
                for u in usage {
                    t.add([u.direction.rawValue, u.label, u.ceil.description, u.rate.description, u.queueLimit.map { "\($0)" } ?? "--",
                           "\(u.statistics.bytes)", "\(u.statistics.packets)", "\(u.statistics.drops)",
                           "\(u.statistics.overlimits)", "\(u.statistics.backlog)"])
                }
                print(t.render())
            }
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a device's cap (its redirects and IFBs).")
        @OptionGroup var location: Location

        func run() throws {
            let (device, handle) = try location.open()
            print(try DeviceCap.clear(device, on: handle) ? "\(device): cap removed" : "\(device): had no cap")
        }
    }
}

func parseRate(_ text: String, _ option: String) throws -> Bitrate {
    do { return try Bitrate(text) } catch { throw ValidationError("\(option): \(error)") }
}

/// A size in bytes: decimal digits, at least one frame (1514).
func parseBytes(_ text: String, _ option: String) throws -> UInt32 {
    guard let v = DecimalText.integer(text).flatMap({ UInt32(exactly: $0) }), v >= 1514 else {
        throw ValidationError("\(option): \(InvalidValue.quoted(text)) must be a number of bytes from 1514 (one frame) to \(UInt32.max)")
    }
    return v
}

/// `NAME,transport=tcp,local-port=80,maxbw=20M`.
func parseFlow(_ text: String) throws -> FlowCap {
    let parts = text.split(separator: ",").map(String.init)
    guard let name = parts.first, !name.contains("=") else {
        throw ValidationError("--flow \(text): start with the flow's name, e.g. http,transport=tcp,local-port=80,maxbw=20M")
    }
    var flow = FlowCap(name: name, maxbw: .kbit(8))
    var sawMaxbw = false
    for p in parts.dropFirst() {
        let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2 else { throw ValidationError("--flow \(text): \"\(p)\" is not key=value") }
        do {
            switch kv[0] {
            case "transport":
                guard let t = Transport(rawValue: kv[1]) else { throw ValidationError("--flow \(text): transport is tcp, udp or icmp") }
                flow.transport = t
            case "local-ip": flow.localIP = try IPPrefix(kv[1])
            case "remote-ip": flow.remoteIP = try IPPrefix(kv[1])
            case "local-port", "remote-port":
                guard let port = DecimalText.integer(kv[1]).flatMap({ UInt16(exactly: $0) }), port > 0 else {
                    throw ValidationError("--flow \(text): \(kv[0]) must be 1–65535")
                }
                if kv[0] == "local-port" { flow.localPort = port } else { flow.remotePort = port }
            case "maxbw": flow.maxbw = try Bitrate(kv[1]); sawMaxbw = true
            default:
                throw ValidationError("--flow \(text): unknown key \"\(kv[0])\"; keys are transport, local-ip, remote-ip, local-port, remote-port, maxbw")
            }
        } catch let e as InvalidValue {
            throw ValidationError("--flow \(text): \(e)")
        }
    }
    guard sawMaxbw else { throw ValidationError("--flow \(text): give the flow a maxbw=RATE") }
    return flow
}
