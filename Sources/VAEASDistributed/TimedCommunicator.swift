import VAEASConfig
import VAEASCore
import Dispatch

/// A `Communicator` that forwards every call and reports it: to `Trace` (the
/// seconds per communication phase that `bench` prints, and the timeline's
/// events with their byte counts) and to the stall watchdog (`monitor`).
/// The phase comes from the span the call is made in (`Trace.collective`), so
/// the model and the reducers name their collectives with `Trace.span`, not
/// through this type.
public final class TimedCommunicator: Communicator {
    public let base: Communicator
    /// Told when each call begins and ends (the training run's stall watchdog); nil: nobody.
    public var monitor: CollectiveMonitor?
    /// The nonblocking collectives in flight: their start, phase and timeline name.
    private var started: [ObjectIdentifier: (start: UInt64, phase: Trace.Phase, name: String?)] = [:]

    public init(_ base: Communicator) { self.base = base }

    public var rank: Int { base.rank }
    public var size: Int { base.size }

    @inline(__always)
    private func timed(_ op: StaticString, bytes: Int, blocking: Bool = true, _ body: () -> Void) {
        monitor?.collectiveBegan(op, within: Trace.current?.label)
        Trace.collective(op, bytes: bytes, blocking: blocking, body)
        monitor?.collectiveEnded()
    }

    public func allreduceSum(_ b: UnsafeMutableBufferPointer<Float>) {
        timed("allreduce_sum", bytes: 4 * b.count) { base.allreduceSum(b) }
    }
    public func allreduceSum(_ b: UnsafeMutableBufferPointer<Double>) {
        timed("allreduce_sum", bytes: 8 * b.count) { base.allreduceSum(b) }
    }
    public func allreduceMax(_ b: UnsafeMutableBufferPointer<Float>) {
        timed("allreduce_max", bytes: 4 * b.count) { base.allreduceMax(b) }
    }
    public func allreduceMax(_ b: UnsafeMutableBufferPointer<Double>) {
        timed("allreduce_max", bytes: 8 * b.count) { base.allreduceMax(b) }
    }
    public func allgatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>, counts: RankCounts) {
        timed("allgatherv", bytes: 4 * counts.total) { base.allgatherv(send: send, receive: receive, counts: counts) }
    }
    public func reduceScatterv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>, counts: RankCounts) {
        timed("reduce_scatterv", bytes: 4 * counts.total) { base.reduceScatterv(send: send, receive: receive, counts: counts) }
    }
    public func gatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>, counts: RankCounts, root: Int) {
        timed("gatherv", bytes: 4 * counts.total) { base.gatherv(send: send, receive: receive, counts: counts, root: root) }
    }
    public func broadcast(_ b: UnsafeMutableRawBufferPointer, root: Int) {
        timed("broadcast", bytes: b.count) { base.broadcast(b, root: root) }
    }
    public func barrier() { timed("barrier", bytes: 0) { base.barrier() } }

    public func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest {
        var request: CollectiveRequest! = nil
        let phase = Trace.communicationPhase, name = Trace.currentName
        let t0 = DispatchTime.now().uptimeNanoseconds
        timed("iallreduce start", bytes: 4 * buffer.count, blocking: false) { request = base.startAllreduceSum(buffer) }
        started[ObjectIdentifier(request)] = (t0, phase, name)
        if request.isComplete { finished(request) }
        return request
    }

    public func test(_ request: CollectiveRequest) -> Bool {
        if request.isComplete { return true }
        // Exposed time, but neither a timeline event nor a call told to the watchdog: how often a rank
        // polls varies (and the watchdog compares the calls ranks began).
        let done = Trace.collective("test", bytes: 0, blocking: false, event: false) { base.test(request) }
        if done { finished(request) }
        return done
    }

    public func wait(_ request: CollectiveRequest) {
        if request.isComplete, started[ObjectIdentifier(request)] == nil { return }
        timed("wait", bytes: 0, blocking: false) { base.wait(request) }   // bytes: counted at the start
        finished(request)
    }

    /// Books a nonblocking collective's time in flight (and its timeline event on the in-flight track).
    private func finished(_ request: CollectiveRequest) {
        guard let s = started.removeValue(forKey: ObjectIdentifier(request)) else { return }
        Trace.inFlight(s.name, phase: s.phase, start: s.start, end: DispatchTime.now().uptimeNanoseconds,
                       bytes: 4 * request.count)
    }
}

/// Watches a rank's communication calls: `TimedCommunicator` tells it when each
/// begins (the operation, and the label of the span it is made in, e.g.
/// "allreduce_sum" within "gradient allreduce": constant strings, so telling
/// costs no allocation) and ends.
public protocol CollectiveMonitor: AnyObject {
    func collectiveBegan(_ op: StaticString, within context: StaticString?)
    func collectiveEnded()
}
