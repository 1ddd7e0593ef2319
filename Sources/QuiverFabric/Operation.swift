import QuiverKernel
import QuiverTopology
import QuiverVM

/// One step of an apply: one kernel change, or one group of them the executor sends together
/// (the shaper's diff of a tenant's caps, the whole rules table in one transaction).
public enum Operation: Sendable, Equatable, CustomStringConvertible {
    case createNamespace(NamespaceName)
    /// Bring `lo` up and tag it (an interrupted apply made the namespace but not this).
    case tagNamespace(NamespaceName)
    /// Bring a VNIC's endpoint side up.
    case bringUp(namespace: String, device: InterfaceName)
    /// Bring a VNIC's fabric side (its switch port) up: one found down.
    case bringUpPort(InterfaceName)
    /// Bring up a port this apply made or moved (a new VNIC's, a guest's NIC), once its caps and
    /// rules are in place. Part of the step that made it, so not counted on its own.
    case openPort(InterfaceName)
    case createBridge(DesiredFabric.Bridge)
    /// One of a capped tenant's IFBs (`T-N-f`, `T-N-t`).
    case createIFB(InterfaceName)
    case createVNIC(DesiredFabric.VNIC)
    /// Plug a VNIC's host side into another switch (it is taken down meanwhile, and opened with
    /// the new ports) / change its MTU.
    case changeVNIC(hostDevice: InterfaceName, bridge: InterfaceName?, mtu: UInt32?)
    /// Set the endpoint side's MAC (a fixed MAC edited in the file).
    case changeMAC(namespace: String, device: InterfaceName, mac: MACAddress)
    /// Give a link an IPv6 link-local address or not (`addrgenmode`); namespace nil: the fabric.
    case setLinkLocal(namespace: String?, device: InterfaceName, on: Bool)
    /// A new endpoint that is to have no IPv6 link-local address gets the mode before its port
    /// comes up, so the kernel never makes one. Part of creating the VNIC, so not counted.
    case quietEndpoint(namespace: String, device: InterfaceName)
    case addAddress(namespace: String, device: InterfaceName, IPPrefix)
    case removeAddress(namespace: String, device: InterfaceName, IPPrefix)
    case setGateway(namespace: String, device: InterfaceName, IPAddress)
    case removeGateway(namespace: String, IPAddress)
    /// Make the tenant's caps match (the shaper diffs them class by class: a no-op when equal).
    case applyCaps(tenant: String)
    /// A VNIC no longer capped loses its redirects.
    case uncap(InterfaceName)
    case removeCaps(tenant: String)
    /// Make a VM host's NICs — taps on their switches, or macvtaps — down, and open their queues
    /// for its qemu. Part of starting the guest, so not counted on its own.
    case createGuestNICs(host: String, nics: [InterfaceName])
    /// Start qemu with the NICs' queues (its kernel, initrd and disk opened and handed over too).
    case startVM(host: String)
    /// Stop a guest (QMP powerdown, quit, then SIGKILL) and remove its run directory.
    case stopVM(host: String)
    /// Start a tenant's DHCP server (dnsmasq) in its namespace, with its static leases.
    case startDHCP(DHCPServer)
    /// Stop a DHCP server and remove its run directory.
    case stopDHCP(directory: String, namespace: String)
    /// Install (or atomically replace) the topology's isolation and protection table.
    case installProtection(replacing: Bool)
    case removeProtection
    /// A tenant's VXLAN device on a switch that spans nodes: made down as a port of the switch
    /// (no learning, neighbour suppression), opened with the other ports.
    case createSegment(DesiredFabric.Segment)
    /// Give an existing switch that now spans nodes its own MAC (its neighbour entries go with
    /// the old one, and are added again).
    case changeBridgeMAC(InterfaceName, MACAddress)
    /// Put an existing segment back on its switch with its MTU and port flags.
    case changeSegment(DesiredFabric.Segment)
    /// A static forwarding entry of a segment (a remote VNIC's MAC, address, or a peer node).
    case addForwarding(DesiredFabric.ForwardingEntry)
    case removeForwarding(DesiredFabric.ForwardingEntry)
    case deleteLink(InterfaceName)
    case deleteNamespace(NamespaceName)
    /// Write the owner tag (`ifalias`) of a link the topology owns but whose tag is missing (an
    /// apply interrupted between creating it and tagging it: the journal names it) or stale (its
    /// VNIC moved to another tenant).
    case tagLink(InterfaceName, tag: String)

    public var description: String {
        switch self {
        case .createNamespace(let n): return "create namespace \(n)"
        case .tagNamespace(let n): return "tag namespace \(n)"
        case .bringUp(let ns, let d): return "bring \(d) up in \(ns)"
        case .bringUpPort(let d): return "bring \(d) up"
        case .openPort(let d): return "bring new port \(d) up"
        case .createBridge(let b): return "create switch \(b.name)"
        case .createIFB(let i): return "create IFB \(i)"
        case .createVNIC(let v): return "create vnic \(v.host)/\(v.name) (\(v.hostDevice) on \(v.bridge))"
        case .changeVNIC(let d, let b, let m):
            return "change vnic \(d):" + (b.map { " switch → \($0)" } ?? "") + (m.map { " mtu → \($0)" } ?? "")
        case .changeMAC(let ns, let d, let m): return "change mac of \(d) in \(ns) → \(m)"
        case .setLinkLocal(let ns, let d, let on):
            return "turn IPv6 link-local \(on ? "on" : "off") on \(d)" + (ns.map { " in \($0)" } ?? "")
        case .quietEndpoint(let ns, let d): return "give new \(d) in \(ns) no IPv6 link-local address"
        case .addAddress(let ns, let d, let p): return "add address \(p) to \(d) in \(ns)"
        case .removeAddress(let ns, let d, let p): return "remove address \(p) from \(d) in \(ns)"
        case .setGateway(let ns, let d, let g): return "set default route via \(g) dev \(d) in \(ns)"
        case .removeGateway(let ns, let g): return "remove default route via \(g) in \(ns)"
        case .applyCaps(let t): return "apply caps of tenant \(t)"
        case .uncap(let d): return "remove the caps of \(d)"
        case .removeCaps(let t): return "remove caps of tenant \(t)"
        case .createGuestNICs(let h, let nics): return "create the NICs of guest \(h) (\(nics.map(\.rawValue).joined(separator: ", ")))"
        case .startVM(let h): return "start vm \(h)"
        case .stopVM(let h): return "stop vm \(h)"
        case .startDHCP(let d): return "start the DHCP server of \(d.label) (\(d.leases.count) static leases)"
        case .stopDHCP(let d, _): return "stop the DHCP server in \(d)"
        case .installProtection(let r): return (r ? "replace" : "install") + " isolation and protection rules"
        case .removeProtection: return "remove isolation and protection rules"
        case .createSegment(let g): return "create segment \(g.device) of tenant \(g.tenant) on \(g.bridge) (VNI \(g.vni), from \(g.local))"
        case .changeSegment(let g): return "put segment \(g.device) back on \(g.bridge) (mtu \(g.mtu), no learning, neighbour suppression)"
        case .changeBridgeMAC(let b, let m): return "give switch \(b) its own MAC \(m)"
        case .addForwarding(let e): return "add forwarding entry \(e)"
        case .removeForwarding(let e): return "remove forwarding entry \(e)"
        case .deleteLink(let l): return "delete link \(l)"
        case .deleteNamespace(let n): return "delete namespace \(n)"
        case .tagLink(let l, let tag): return "tag link \(l) \(tag)"
        }
    }

    /// For the summary line; nil for a step that completes another one (`openPort`,
    /// `quietEndpoint`, `createGuestNICs`) and is not counted on its own.
    public var verb: Verb? {
        switch self {
        case .createNamespace, .createBridge, .createIFB, .createVNIC, .addAddress, .setGateway, .startVM, .startDHCP, .createSegment, .addForwarding: return .create
        case .changeSegment, .changeBridgeMAC: return .change
        case .removeForwarding: return .delete
        case .installProtection(let replacing): return replacing ? .change : .create
        case .changeVNIC, .changeMAC, .applyCaps, .tagNamespace, .bringUp, .bringUpPort, .setLinkLocal, .tagLink: return .change
        case .removeAddress, .removeGateway, .removeCaps, .uncap, .deleteLink, .deleteNamespace, .removeProtection, .stopVM, .stopDHCP: return .delete
        case .openPort, .quietEndpoint, .createGuestNICs: return nil
        }
    }

    public enum Verb { case create, change, delete }

    /// The phase this step runs in.
    public var phase: PhaseKind {
        switch self {
        case .stopVM, .stopDHCP: return .stopGuests
        case .startDHCP: return .dhcp
        case .removeCaps: return .removeCaps
        case .deleteLink: return .deleteLinks
        case .deleteNamespace: return .deleteNamespaces
        case .tagLink: return .tagLinks
        case .createNamespace, .tagNamespace: return .namespaces
        case .createBridge, .createIFB: return .switches
        case .createSegment, .changeSegment, .changeBridgeMAC, .addForwarding, .removeForwarding: return .segments
        case .changeVNIC: return .moveVNICs
        case .createVNIC: return .createVNICs
        case .createGuestNICs: return .guestNICs
        case .startVM: return .guests
        case .changeMAC, .setLinkLocal, .quietEndpoint, .removeAddress, .addAddress, .removeGateway, .setGateway: return .hosts
        case .applyCaps, .uncap: return .caps
        case .installProtection, .removeProtection: return .rules
        case .bringUp, .bringUpPort, .openPort: return .portsUp
        }
    }

    /// Order within its phase: link modes and MACs before addresses, old addresses and routes
    /// before new ones (a host is never left without a route: both go in one batch), caps before
    /// uncapping; the rest in the order the planner found them.
    var rank: Int {
        switch self {
        case .createNamespace: return 0
        case .tagNamespace: return 1
        case .changeMAC, .setLinkLocal, .quietEndpoint: return 0
        case .removeAddress: return 1
        case .addAddress: return 2
        case .removeGateway: return 3
        case .setGateway: return 4
        case .applyCaps: return 0
        case .uncap: return 1
        case .bringUp: return 0
        case .bringUpPort, .openPort: return 1
        case .createSegment, .changeSegment, .changeBridgeMAC: return 0
        case .removeForwarding: return 1
        case .addForwarding: return 2
        default: return 0
        }
    }
}

extension Operation {
    /// The step leaves every fabric link as it is (so the links and caps' state read while
    /// planning still hold once it is done).
    var keepsFabricLinks: Bool {
        switch self {
        case .applyCaps, .uncap, .installProtection, .removeProtection, .addAddress, .removeAddress, .setGateway, .removeGateway,
             .changeMAC, .bringUp, .bringUpPort, .setLinkLocal:
            return true
        default:
            return false
        }
    }
}
