import Foundation
import QuiverKernel
import QuiverTopology
import QuiverVM

/// What `quiver verify` checks inside guests that run qemu-guest-agent: their configuration as
/// the guest itself reports it, and forged frames sent from inside.
extension Verifier {
    /// `configured`: every NIC of the guest, found by the file's MAC, has the file's name and
    /// exactly the file's addresses (link-local ones aside: the kernel makes those), and the
    /// guest's default routes are exactly the file's gateways, each through its NIC.
    mutating func configured(_ row: inout VerifyRow, host ref: Topology.EndpointRef) throws {
        row.kind = "configured"
        row.from = ref.description
        row.to = "inside the guest"
        guard let vm = desired.vms.first(where: { $0.tenant == ref.tenant && $0.host == ref.host }) else {
            throw VerifyError("\(ref) is not a vm host")
        }
        let endpoint = try resolve(ref)
        guard let qga = endpoint.agent as? QGAClient else { throw VerifyError("\(ref) has no qemu-guest-agent to ask") }
        let interfaces = try qga.interfaces()
        // The guest kernel's own route tables, read by the agent: no program runs for it.
        let routes = try qga.defaultRoutes()
        var problems: [String] = []
        var seen: [String] = []
        for nic in vm.spec.nics {
            guard let i = interfaces.first(where: { $0.mac?.lowercased() == nic.mac.description.lowercased() }) else {
                problems.append("no NIC with MAC \(nic.mac)")
                continue
            }
            if i.name != nic.guestDevice { problems.append("\(nic.mac) is named \(i.name), not \(nic.guestDevice)") }
            let have = Set(i.addresses.compactMap { try? IPPrefix($0) }.filter { !$0.address.isLinkLocal })
            let want = Set(nic.allAddresses)
            if have != want {
                let missing = want.subtracting(have).map(\.description).sorted(), extra = have.subtracting(want).map(\.description).sorted()
                problems.append("\(i.name): " + [missing.isEmpty ? nil : "lacks " + missing.joined(separator: ", "),
                                                 extra.isEmpty ? nil : "also has " + extra.joined(separator: ", ")].compactMap { $0 }.joined(separator: "; "))
            }
            seen.append("\(i.name) \(nic.mac) " + want.map(\.description).sorted().joined(separator: ","))
        }
        let wantRoutes = Set(vm.spec.nics.compactMap { n in n.gateway.map { "\($0) dev \(n.guestDevice)" } })
        let haveRoutes = Set(routes.map { "\($0.gateway) dev \($0.device)" })
        if wantRoutes != haveRoutes {
            problems.append("default routes are [\(haveRoutes.sorted().joined(separator: "; "))], the file says [\(wantRoutes.sorted().joined(separator: "; "))]")
        }
        row.passed = problems.isEmpty
        row.detail = (problems.isEmpty ? "as the file says: " + seen.joined(separator: "; ") + (wantRoutes.isEmpty ? "" : "; default via " + wantRoutes.sorted().joined(separator: ", "))
                      : problems.joined(separator: "; ")) + " (reported by qemu-guest-agent)"
    }

    /// Sends `count` copies of `frame` out of the guest's NIC `device`, from a raw packet socket
    /// of python3 in the guest (through `guest-exec`, no shell): exactly those frames, nothing
    /// the guest's own stack would add.
    static func sendFromGuest(_ qga: QGAClient, device: String, frame: [UInt8], count: Int) throws {
        let program = "import socket,sys,time\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind((sys.argv[1],0))\n"
            + "f=bytes.fromhex(sys.argv[2])\nfor _ in range(int(sys.argv[3])):\n s.send(f)\n time.sleep(0.002)\n"
        let hex = frame.map { String(format: "%02x", $0) }.joined()
        let r = try qga.exec("python3", ["-c", program, device, hex, String(count)], timeout: Double(count) * 0.05 + 20)
        guard r.status == 0 else { throw VerifyError("python3 in the guest could not send frames: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))") }
    }
}
