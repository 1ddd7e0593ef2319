import CNetlink
import Foundation
import QuiverKernel
import QuiverNetlink
import SystemPackage
import Testing

/// Privileged: taps made through /dev/net/tun and macvtaps with their character devices.
@Suite struct TapTests {
    @Test func multiQueueTapReturnsOneDescriptorPerQueue() throws {
        try withScratchNamespace { ns, h in
            let tap = try Tap.create("tap-mq0", TapOptions(vnetHeader: true, queues: 4, persistent: false), in: ns)
            #expect(tap.queues.count == 4)
            #expect(Set(tap.queues.map(\.rawValue)).count == 4)
            for fd in tap.queues { #expect(fcntl(fd.rawValue, F_GETFD) & FD_CLOEXEC != 0, "queue fds are close-on-exec") }

            let l = try h.link(named: "tap-mq0")
            #expect(l.linkClass == "tap")
            guard case .tun(let info)? = l.data else { Issue.record("not a tun link"); return }
            #expect(info.isTap && info.vnetHeader && info.multiQueue && !info.persistent)
            #expect(info.queues == 4)

            let data = try #require(ipLinks(ns)["tap-mq0"]?.dict("linkinfo")?.dict("info_data"))
            #expect(data["type"] as? String == "tap")
            #expect(data["vnet_hdr"] as? Bool == true)
            #expect(data["multi_queue"] as? Bool == true)
            #expect(data["numqueues"] as? Int == 4)

            // The tap belongs to its descriptors: closing them removes it. (A process another
            // test forks at that moment holds copies until its exec closes them: allow a moment.)
            tap.close()
            tap.close() // idempotent
            #expect(tap.queues.isEmpty)
            let deadline = Date().addingTimeInterval(2)
            while try h.linkIfPresent(named: "tap-mq0") != nil, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            #expect(try h.linkIfPresent(named: "tap-mq0") == nil)
        }
    }

    @Test func persistentTapOutlivesItsDescriptors() throws {
        try withScratchNamespace { ns, h in
            let tap = try Tap.create("tap-p0", TapOptions(vnetHeader: true, queues: 1, persistent: true, owner: 4242), in: ns)
            tap.close()
            let l = try h.link(named: "tap-p0")
            guard case .tun(let info)? = l.data else { Issue.record("not a tun link"); return }
            #expect(info.persistent)
            #expect(info.owner == 4242)
            #expect(!info.multiQueue)
            let data = try #require(ipLinks(ns)["tap-p0"]?.dict("linkinfo")?.dict("info_data"))
            #expect(data["persist"] as? Bool == true)
            #expect(data["user"] as? String == "4242" || data["user"] as? Int == 4242)
            try h.deleteLink("tap-p0")
            #expect(try h.linkIfPresent(named: "tap-p0") == nil)
        }
    }

    @Test func tapStepsFailWithTheirName() throws {
        try withScratchNamespace { ns, _ in
            let first = try Tap.create("tap-busy", TapOptions(queues: 1), in: ns)
            defer { first.close() }
            // A second single-queue open of the same tap is refused at TUNSETIFF.
            let e = #expect(throws: SystemCallError.self) { try Tap.create("tap-busy", TapOptions(queues: 1), in: ns) }
            #expect(e?.call == "TUNSETIFF")
            #expect(e?.description.contains("tap tap-busy") == true)
            #expect(throws: InvalidValue.self) { try Tap.create("tap-bad", TapOptions(queues: 0), in: ns) }
        }
    }

    @Test func macvtapOverALowerLinkOpensItsCharacterDevice() throws {
        try withScratchNamespace { ns, h in
            try h.addLink("lower0", Veth(peer: "lower0p"), LinkSettings(up: true))
            let lower = try h.link(named: "lower0")
            let mac = try MACAddress("02:00:00:aa:00:01")
            try h.addLink("mvt0", Macvtap(lowerIndex: lower.index, mode: .bridge), LinkSettings(up: true, mac: mac))
            let l = try h.link(named: "mvt0")
            #expect(l.data == .macvtap(Macvtap(lowerIndex: lower.index, mode: .bridge)))
            #expect(l.mac == mac)
            let w = try #require(ipLinks(ns)["mvt0"])
            #expect(w.dict("linkinfo")?["info_kind"] as? String == "macvtap")
            #expect(w.dict("linkinfo")?.dict("info_data")?["mode"] as? String == "bridge")
            #expect(w["link"] as? String == "lower0")

            let fd = try Macvtap.openCharacterDevice(ifindex: l.index, name: "mvt0")
            defer { try? fd.close() }
            var st = stat()
            #expect(fstat(fd.rawValue, &st) == 0)
            #expect(st.st_mode & S_IFMT == S_IFCHR)

            for mode in Macvtap.Mode.allCases where mode != .passthru {
                let name = try InterfaceName(validating: "mvt-\(mode.rawValue.prefix(4))")
                try h.addLink(name, Macvtap(lowerIndex: lower.index, mode: mode))
                #expect(try h.link(named: name).data == .macvtap(Macvtap(lowerIndex: lower.index, mode: mode)))
                try h.deleteLink(name)
            }
            try h.deleteLink("mvt0")
            #expect(!FileManager.default.fileExists(atPath: Macvtap.characterDevicePath(ifindex: l.index)))

            // Passthru takes the lower link for itself: only when nothing else sits on it.
            try h.addLink("mvt-pt", Macvtap(lowerIndex: lower.index, mode: .passthru))
            #expect(try h.link(named: "mvt-pt").data == .macvtap(Macvtap(lowerIndex: lower.index, mode: .passthru)))
            #expect(try ipLinks(ns)["mvt-pt"]?.dict("linkinfo")?.dict("info_data")?["mode"] as? String == "passthru")
        }
    }
}
