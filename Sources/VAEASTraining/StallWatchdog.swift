import VAEASDistributed
import Foundation
import Dispatch

/// `train.stall_timeout`: a thread on every rank that ends the job when this
/// rank has made no progress for that long — one communication call not
/// returning (a peer frozen by a swap storm, NFS, `kill -STOP`), or no call
/// at all (this rank stuck) — instead of spinning in an allreduce forever.
/// PyTorch's process groups abort a collective after a timeout and Horovod
/// names stalled ranks; this does both.
///
/// Progress is what the main thread tells it: every call through the step's
/// `TimedCommunicator` (`CollectiveMonitor`), each step, and the evaluation's
/// chunks (`beat`). It costs a lock per call and adds no collective. Once a
/// second (or a fifth of the timeout) the thread writes this rank's heartbeat,
/// `RUN/.heartbeat/rank-K.json` (step, phase, the call it is in, how many calls
/// it has begun, the wall clock), so that when it fires it can say which ranks
/// stopped answering (a stale heartbeat) or are behind (fewer calls begun):
/// the ranks this one waits for. On a stall every live rank prints its report
/// on stderr and exits with `exitStatus`; mpirun then ends the other ranks,
/// a stopped one included. Heartbeats of ranks on other hosts are visible only
/// when the run directory is shared; the report says so when one is missing.
public final class StallWatchdog: CollectiveMonitor {
    /// The exit status of a stalled job (`timeout(1)`'s).
    public static let exitStatus: Int32 = 124

    public let timeout: Double
    public let rank: Int
    public let size: Int
    public let host: String
    /// `RUN/.heartbeat`; nil: no heartbeats (the report then covers this rank only).
    public let heartbeatDirectory: String?
    public let runDirectory: String?
    private let interval: Double
    private let lock = NSLock()
    private var lastProgress = DispatchTime.now().uptimeNanoseconds
    /// The call in progress: its operation and the span it was made in (constant strings: no allocation per call).
    private var collectiveOp: StaticString?
    private var collectiveContext: StaticString?
    private var collectiveSince: UInt64 = 0
    private var began: UInt64 = 0
    private var step = 0
    private var phase = "start-up"
    private var stopped = false
    private var thread: Thread?

    public init(timeout: Double, rank: Int, size: Int, host: String, runDirectory: String?) {
        self.timeout = timeout
        self.rank = rank
        self.size = size
        self.host = host
        self.runDirectory = runDirectory
        heartbeatDirectory = runDirectory.map { $0 + "/.heartbeat" }
        interval = max(0.05, min(1, timeout / 5))
    }

    // MARK: what the main thread says

    public func collectiveBegan(_ op: StaticString, within context: StaticString?) {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        collectiveOp = op; collectiveContext = context; collectiveSince = now; began += 1; lastProgress = now
        lock.unlock()
    }

    /// The call in progress as the report names it, e.g. "gradient allreduce: allreduce_sum".
    private var collective: String? {
        guard let op = collectiveOp else { return nil }
        return collectiveContext.map { "\($0): \(op)" } ?? "\(op)"
    }

    public func collectiveEnded() {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        collectiveOp = nil; lastProgress = now
        lock.unlock()
    }

    /// Entering optimizer step `step` (1-based) or another phase of the run.
    public func mark(step: Int, phase: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        self.step = step; self.phase = phase; lastProgress = now
        lock.unlock()
    }

    /// Progress inside a long phase without communication (evaluation chunks).
    public func beat() {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        lastProgress = now
        lock.unlock()
    }

    // MARK: the watching thread

    public func start() {
        if let heartbeatDirectory {
            try? FileManager.default.createDirectory(atPath: heartbeatDirectory, withIntermediateDirectories: true)
        }
        let t = Thread { [self] in watch() }
        t.name = "vaeas-stall-watchdog"
        thread = t
        t.start()
    }

    /// At the end of the run: the thread stops and this rank's heartbeat is removed.
    public func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
        if let path = heartbeatPath(rank) { try? FileManager.default.removeItem(atPath: path) }
    }

    private func watch() {
        var woke = DispatchTime.now().uptimeNanoseconds
        while true {
            Thread.sleep(forTimeInterval: interval)
            lock.lock()
            let now = DispatchTime.now().uptimeNanoseconds
            let s = Snapshot(rank: rank, host: host, step: step, phase: phase, collective: collective,
                             inCollective: collective == nil ? 0 : Double(now &- collectiveSince) * 1e-9,
                             began: began, wall: Date().timeIntervalSince1970)
            let idle = Double(now &- lastProgress) * 1e-9
            let done = stopped
            lock.unlock()
            if done { return }
            // A sleep that overran by far means this whole process was frozen (SIGSTOP, a VM
            // paused, swapping): its idle time is not its own stall. Give the main thread a
            // whole timeout again; mpirun continues a stopped rank only to end it.
            let frozen = Double(now &- woke) * 1e-9 > interval + max(1, timeout / 2)
            woke = now
            writeHeartbeat(s)
            if frozen {
                lock.lock()
                lastProgress = now
                lock.unlock()
                continue
            }
            if idle > timeout { fire(s, idle: idle) }
        }
    }

    /// Prints the report on stderr and into `RUN/stall-rank-K.txt` (a launcher may drop
    /// the last output of a rank that exits), then ends the process.
    private func fire(_ s: Snapshot, idle: Double) -> Never {
        let report = Self.report(me: s, idle: idle, timeout: timeout, size: size, interval: interval,
                                 peers: (0..<size).filter { $0 != rank }.map { ($0, readHeartbeat($0)) },
                                 directory: heartbeatDirectory, runDirectory: runDirectory) + "\n"
        let bytes = Array(report.utf8)
        _ = bytes.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count) }
        if let runDirectory {
            let fd = open("\(runDirectory)/stall-rank-\(rank).txt", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0 {
                _ = bytes.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
                fsync(fd)
                close(fd)
            }
        }
        usleep(500_000)   // let mpirun's or srun's output forwarding read the report before the pipe closes
        _exit(Self.exitStatus)
    }

    /// What one rank was doing at its last heartbeat.
    struct Snapshot: Codable {
        var rank: Int
        var host: String
        var pid: Int32 = getpid()
        var step: Int
        var phase: String
        var collective: String?
        var inCollective: Double
        var began: UInt64
        var wall: Double
    }

    private func heartbeatPath(_ r: Int) -> String? { heartbeatDirectory.map { "\($0)/rank-\(r).json" } }

    /// One JSON line through open/write/rename (no Foundation file APIs on this
    /// thread: with MPI initialised, FileManager and JSONEncoder here corrupted
    /// the heap in testing).
    private func writeHeartbeat(_ s: Snapshot) {
        guard let path = heartbeatPath(rank) else { return }
        func quoted(_ x: String) -> String {
            "\"" + x.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        let line = "{\"rank\":\(s.rank),\"host\":\(quoted(s.host)),\"pid\":\(s.pid),\"step\":\(s.step),"
            + "\"phase\":\(quoted(s.phase)),\"collective\":\(s.collective.map(quoted) ?? "null"),"
            + "\"inCollective\":\(s.inCollective),\"began\":\(s.began),\"wall\":\(s.wall)}\n"
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return }
        let ok = line.utf8CString.withUnsafeBufferPointer { b in write(fd, b.baseAddress, b.count - 1) == b.count - 1 }
        close(fd)
        if ok { _ = rename(tmp, path) }
    }

    private func readHeartbeat(_ r: Int) -> Snapshot? {
        guard let path = heartbeatPath(r), let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(Snapshot.self, from: data)
    }

    /// The stall report of rank `me`: where it waits, and for each peer what its
    /// heartbeat says (stale: not responding; fewer calls begun: behind), ending
    /// with the ranks this one waits for. A pure function, for the tests.
    static func report(me: Snapshot, idle: Double, timeout: Double, size: Int, interval: Double,
                       peers: [(Int, Snapshot?)], directory: String?, runDirectory: String?) -> String {
        func f(_ x: Double) -> String { String(format: "%.1f", x) }
        func doing(_ s: Snapshot) -> String {
            "step \(s.step), \(s.phase), " + (s.collective.map { "inside '\($0)' for \(f(s.inCollective)) s" } ?? "outside any communication call")
                + ", \(s.began) calls begun"
        }
        var lines = ["vaeas-dist: stall: rank \(me.rank) (host \(me.host), pid \(me.pid)) has made no progress for \(f(idle)) s "
                     + "(train.stall_timeout = \(f(timeout)) s): \(doing(me))."]
        var waitingFor: [Int] = []
        let stale = max(3 * interval, 2.0)
        for (r, s) in peers {
            guard let s else {
                lines.append("  rank \(r): no heartbeat in \(directory ?? "(none kept)") (a rank on another host is visible only with a shared run directory)")
                continue
            }
            let age = me.wall - s.wall
            if age > stale {
                lines.append("  rank \(r) (host \(s.host), pid \(s.pid)): NOT RESPONDING: last heartbeat \(f(age)) s ago, at \(doing(s))")
                waitingFor.append(r)
            } else if s.began < me.began || (s.began == me.began && s.collective == nil && me.collective != nil) {
                lines.append("  rank \(r) (host \(s.host), pid \(s.pid)): behind, has not reached this call: \(doing(s))")
                waitingFor.append(r)
            } else {
                lines.append("  rank \(r) (host \(s.host), pid \(s.pid)): alive: \(doing(s))")
            }
        }
        if size == 1 {
            lines.append("  the only rank is stuck \(me.collective == nil ? "outside communication (I/O, a hung library call)" : "in a communication call")")
        } else if waitingFor.isEmpty {
            lines.append("  no peer looks stuck from here (the stall may be in the network or the MPI library)")
        } else {
            lines.append("  waiting for rank\(waitingFor.count > 1 ? "s" : "") \(waitingFor.map(String.init).joined(separator: ", "))")
        }
        lines.append("  ending the job with exit status \(exitStatus) (README, \"Exit status\"); continue from the last checkpoint with "
                     + "vaeas-dist train --resume \(runDirectory ?? "RUN_DIR")")
        return lines.joined(separator: "\n")
    }
}
