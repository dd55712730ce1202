import VAEASConfig
import VAEASCore
import Dispatch

/// A `Communicator` that forwards every call, adds up the seconds spent
/// in collectives (how `bench` separates communication from computation in
/// code, the partitioned softmax, that interleaves the two) and, when a
/// timeline is recording, records each collective as an event with its byte
/// count.
///
/// `seconds` is the time this rank spent inside communication calls: the
/// blocking collectives, and the start, polls and waits of the nonblocking
/// ones — the communication compute could not hide ("exposed").
/// `inFlightSeconds` is the nonblocking collectives' time from start to the
/// call that saw them complete (bounded below by their real duration, above
/// by the polling granularity).
public final class TimedCommunicator: Communicator {
    public let base: Communicator
    /// Told when each call begins and ends (the training run's stall watchdog); nil: nobody.
    public var monitor: CollectiveMonitor?
    public private(set) var seconds = 0.0
    public private(set) var inFlightSeconds = 0.0
    /// Names the timeline events of the calls made inside `labeled` (e.g. the
    /// classifier's collectives: "allgather H"); nil: the operation's name.
    public var context: String?
    private var started: [ObjectIdentifier: (start: UInt64, name: String)] = [:]

    public init(_ base: Communicator) { self.base = base }

    public var rank: Int { base.rank }
    public var size: Int { base.size }

    /// Runs `body` with `context` set to `name`.
    public func labeled<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let saved = context
        context = name
        defer { context = saved }
        return try body()
    }

    @inline(__always)
    private func timed(_ op: StaticString, bytes: Int, _ body: () -> Void) {
        if let monitor { monitor.collectiveBegan(eventName(op)) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        let t1 = DispatchTime.now().uptimeNanoseconds
        monitor?.collectiveEnded()
        seconds += Double(t1 - t0) * 1e-9
        if Trace.recording {
            Trace.record(eventName(op), "communication", start: t0, end: t1, track: Trace.mainTrack,
                         args: [("bytes", Double(bytes))])
        }
    }

    /// The classifier's collectives by their role in the design doc; others by operation.
    private func eventName(_ op: StaticString) -> String {
        guard let context else { return "\(op)" }
        if context == "classifier" {
            switch "\(op)" {
            case "allgatherv": return "allgather H"
            case "reduce_scatterv": return "reduce-scatter dH"
            case "allreduce_max": return "allreduce max"
            case "allreduce_sum": return "allreduce sum"
            default: break
            }
        }
        return "\(context): \(op)"
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
        let t0 = DispatchTime.now().uptimeNanoseconds
        timed("iallreduce start", bytes: 4 * buffer.count) { request = base.startAllreduceSum(buffer) }
        started[ObjectIdentifier(request)] = (t0, context ?? "iallreduce")
        if request.isComplete { finished(request) }
        return request
    }

    public func test(_ request: CollectiveRequest) -> Bool {
        if request.isComplete { return true }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let done = base.test(request)
        seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        if done { finished(request) }
        return done
    }

    public func wait(_ request: CollectiveRequest) {
        if request.isComplete, started[ObjectIdentifier(request)] == nil { return }
        timed("wait", bytes: 4 * request.count) { base.wait(request) }
        finished(request)
    }

    /// Books a nonblocking collective's time in flight (and its timeline event on the in-flight track).
    private func finished(_ request: CollectiveRequest) {
        guard let s = started.removeValue(forKey: ObjectIdentifier(request)) else { return }
        let end = DispatchTime.now().uptimeNanoseconds
        inFlightSeconds += Double(end - s.start) * 1e-9
        Trace.record(s.name, "communication", start: s.start, end: end, track: Trace.inFlightTrack,
                     args: [("bytes", Double(4 * request.count))])
    }
}

/// Watches a rank's communication calls: `TimedCommunicator` tells it when each
/// begins (with its name, e.g. "gradient allreduce: allreduce_sum") and ends.
public protocol CollectiveMonitor: AnyObject {
    func collectiveBegan(_ name: String)
    func collectiveEnded()
}
