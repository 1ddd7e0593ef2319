import Foundation
import Logging
import QuiverFabric
import QuiverKernel
import QuiverNetlink
import QuiverTopology

/// The persistent records, read at start and again on SIGHUP.
extension Daemon {
    /// Every record that still validates becomes a managed topology; one that does not is
    /// reported (log, `quiver status`) and left alone — never half-applied.
    func loadRecords() {
        unusable = []
        let entries: [PersistentStore.Entry]
        do { entries = try options.store.entries() } catch {
            log.error("cannot read the persistent records", metadata: ["directory": "\(options.store.path)", "error": "\(error)"])
            unusable.append("\(options.store.path): \(error)")
            return
        }
        var fabrics: [String: Fabric] = [:]
        var loaded: [String: Managed] = [:]
        for entry in entries {
            do {
                let record = try entry.record.get()
                let t = try record.parsed()
                let ns = try record.fabricNetns.map { name -> NetworkNamespace in
                    let n = try NamespaceName(validating: name)
                    guard n.namespace.exists else {
                        throw PersistentStoreError("its fabric namespace \(name) does not exist", "make it, then send the daemon SIGHUP")
                    }
                    return n.namespace
                }
                let fabric = try fabrics[record.fabricNetns ?? ""] ?? Fabric(fabric: ns)
                fabrics[record.fabricNetns ?? ""] = fabric
                let placed = try fabric.placed(t, node: record.node)
                let m = Managed(record: record, topology: placed, fabric: fabric, desired: try DesiredFabric(placed))
                loaded[m.status.key] = m
            } catch {
                let why = (error as? TopologyErrors)?.description ?? "\(error)"
                log.error("persistent topology not applied: its record does not validate", metadata: ["topology": "\(entry.name)", "error": "\(why)"])
                unusable.append("\(entry.name): \(why)")
            }
        }
        managed = loaded
        for m in loaded.values {
            for vm in m.vms where guests["\(m.topology.name)/\(vm.host)"] == nil {
                let policy = m.topology.tenants.flatMap(\.hosts).first { $0.name == vm.host }?.vm?.restart ?? .onFailure
                guests["\(m.topology.name)/\(vm.host)"] = GuestWatch(topology: m.topology.name, host: vm.host, policy: policy)
            }
        }
        let keep = Set(loaded.values.flatMap { m in m.vms.map { "\(m.topology.name)/\($0.host)" } })
        guests = guests.filter { keep.contains($0.key) }
    }

    /// SIGHUP: the records read again. A new or changed record is applied; one removed is no
    /// longer managed (its fabric keeps running: `disable` is not `destroy`); a paused topology
    /// is resumed.
    func reload() {
        let before = managed
        loadRecords()
        nextGuestCheck = Date()
        for (key, m) in managed.sorted(by: { $0.key < $1.key }) {
            if let old = before[key], old.record == m.record, !old.paused {
                m.status = old.status
                m.applyID = old.applyID
                continue
            }
            converge(m, found: [before[key] == nil ? "record added" : "record changed or resumed"], since: Date(), kind: .reload)
        }
        for key in before.keys where managed[key] == nil {
            log.info("no longer persistent: left running, no longer repaired", metadata: ["topology": "\(key)"])
        }
        updateWatch()
        log.info("persistent records read again", metadata: ["topologies": "\(managed.count)", "unusable": "\(unusable.count)"])
    }
}
