import Foundation
import QuiverTopology
import QuiverVM

/// How often the daemon brings a guest back: exponential back-off from `initialBackoff`,
/// doubled per restart within `window`, at most `maxBackoff`; after `limit` restarts within
/// `window` the guest is left stopped (as systemd's `StartLimitBurst` in `StartLimitIntervalSec`).
public struct RestartLimits: Sendable, Equatable {
    public var initialBackoff: TimeInterval = 1
    public var maxBackoff: TimeInterval = 60
    public var limit = 5
    public var window: TimeInterval = 300

    public init(initialBackoff: TimeInterval = 1, maxBackoff: TimeInterval = 60, limit: Int = 5, window: TimeInterval = 300) {
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.limit = limit
        self.window = window
    }
}

/// One guest as the daemon supervises it: what `quiver vm list` and `quiver status` show.
public struct GuestWatch: Sendable, Codable, Equatable {
    public var topology: String
    public var host: String
    public var policy: Topology.RestartPolicy
    /// "running", "stopped", "waiting to restart", or "given up".
    public var state = "running"
    /// Restarts by the daemon since it started.
    public var restarts = 0
    /// When each restart within the window happened.
    public var recent: [Date] = []
    public var lastExit: GuestExit?
    public var lastExitAt: Date?
    /// When the next restart is due (waiting to restart).
    public var nextRestart: Date?
    /// Why the daemon left the guest stopped, when it did.
    public var reason: String?

    public init(topology: String, host: String, policy: Topology.RestartPolicy) {
        self.topology = topology
        self.host = host
        self.policy = policy
    }

    /// The guest's qemu was found gone with `exit`: decides whether and when it comes back.
    public mutating func gone(_ exit: GuestExit, now: Date, limits: RestartLimits) {
        lastExit = exit
        lastExitAt = now
        let restart: Bool
        switch (exit, policy) {
        case (.stoppedByQuiver, _): restart = false; reason = "stopped by quiver (vm stop): left stopped"
        case (_, .never): restart = false; reason = "restart: never"
        case (.poweredOff, .onFailure): restart = false; reason = "the guest powered off (restart: on-failure)"
        default: restart = true
        }
        guard restart else {
            state = "stopped"
            nextRestart = nil
            return
        }
        recent = recent.filter { now.timeIntervalSince($0) < limits.window }
        guard recent.count < limits.limit else {
            state = "given up"
            nextRestart = nil
            reason = "\(recent.count) restarts tried in \(Int(limits.window)) s and gone again (\(exit.rawValue)): left stopped"
            return
        }
        state = "waiting to restart"
        reason = nil
        let delay = min(limits.maxBackoff, limits.initialBackoff * pow(2, Double(recent.count)))
        nextRestart = now.addingTimeInterval(delay)
    }

    /// Whether the next apply may start the guest now.
    public func mayStart(now: Date) -> Bool {
        state == "waiting to restart" && (nextRestart.map { now >= $0 } ?? true)
    }

    /// The apply meant to restart it, and qemu did not start: an attempt within the window all
    /// the same (it is not a restart), decided on as a guest gone at once.
    public mutating func startFailed(now: Date, limits: RestartLimits) {
        recent.append(now)
        gone(.failedToStart, now: now, limits: limits)
    }

    /// The apply started it again.
    public mutating func restarted(now: Date) {
        restarts += 1
        recent.append(now)
        state = "running"
        nextRestart = nil
    }
}
