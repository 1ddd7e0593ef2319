import Foundation
import QuiverBandwidth
import QuiverKernel
import QuiverNetlink
import QuiverProbe
import Testing

/// Privileged, real traffic: a cap on one device, both directions, several rates.
/// Goodput must be within ±10 % of cap × 0.956 (TCP/IP/Ethernet headers are inside the cap).
/// Every suite that measures traffic runs inside this one, one test at a time, so two
/// measurements never share the CPU.
@Suite(.serialized) enum Traffic {}

extension Traffic {
@Suite struct DeviceCapTrafficTests {
    static let headerShare = 0.956

    @Test(arguments: [2, 20, 200])
    func capHoldsBothDirections(mbps: UInt64) throws {
        try withFabric(endpoints: 2) { f in
            let a = f.endpoints[0], b = f.endpoints[1]
            try DeviceCap.set(a.hostDevice, maxbw: .mbit(mbps), on: f.handle)
            let expected = Double(mbps) * 1e6 * Self.headerShare
            // From a's endpoint (its outbound), then towards it (its inbound).
            // Low rates carry few packets a second: measure longer for the same confidence.
            let (duration, warmup) = mbps < 10 ? (6.0, 2.0) : (3.5, 1.5)
            let out = try TCPBulk(from: a.ns, to: b.ns, address: b.ip, duration: duration, warmup: warmup).run()
            let inb = try TCPBulk(from: b.ns, to: a.ns, address: a.ip, duration: duration, warmup: warmup).run()
            print("cap \(mbps)M: outbound \(mbit(out.bitsPerSecond)), inbound \(mbit(inb.bitsPerSecond)), expected \(mbit(expected))")
            #expect(out.completed && inb.completed)
            #expect(abs(out.bitsPerSecond / expected - 1) <= 0.10, "outbound \(mbit(out.bitsPerSecond)) vs \(mbit(expected))")
            #expect(abs(inb.bitsPerSecond / expected - 1) <= 0.10, "inbound \(mbit(inb.bitsPerSecond)) vs \(mbit(expected))")
        }
    }
}
}
