import Dispatch

/// The one timing track of a rank's process (issue #22): nested spans, each in
/// a `Phase`, that always add up the seconds per phase (`totals`, what `bench`
/// prints and its tests read), and that also become `--timeline` events while
/// `recording` is on.
///
/// Time is booked exclusively, as a profiler's self time: a span's seconds
/// minus those of the spans nested in it, so the phases partition the step
/// (a collective inside the classifier's forward is communication, not
/// classifier compute; a gradient bucket started inside backward is gradient
/// communication, not backward). A span with no phase of its own (a layer's
/// forward) books into the phase of the span around it. A collective
/// (`collective`, called by `TimedCommunicator`) books into the communication
/// phase its context implies: inside the classifier, `classifierCommunication`;
/// inside a span of a communication phase, that phase; else `communication`.
///
/// Single-threaded by design: the rank's main thread opens and closes every
/// span (BLAS threads and the stall watchdog never do). Cost when no timeline
/// is asked for: two clock reads and a push and pop of a small array per span.
///
/// Only the recorder lives here (no MPI, no collectives): `TimelineWriter`
/// (VAEASDistributed) aligns the ranks' clocks, gathers the events to rank 0
/// through the `Communicator` and writes the Chrome trace JSON.
public enum Trace {
    /// Tracks within a rank's process: compute (and the blocking collectives
    /// nested in it), and the nonblocking collectives in flight beside it.
    public static let mainTrack = 0
    public static let inFlightTrack = 1

    /// Where a span's seconds are booked.
    public enum Phase: Int, CaseIterable, Sendable {
        case data, forward, backward
        /// The VAE-AS classifier's compute: hidden layers and the partitioned output layer.
        case classifier
        /// The classifier's collectives (allgather H, the softmax's reductions, reduce-scatter dH).
        case classifierCommunication
        /// The replicated gradients' reduction (exposed: the time this rank spent in its calls).
        case gradientCommunication
        /// Every other collective (loss sums and flags, ZeRO's parameter allgather, …).
        case communication
        case optimizer, classifierOptimizer
        case evaluation, checkpoint
        /// A step's time outside every other span (its glue).
        case step
        /// Time in spans opened outside any phase.
        case other

        public var isCommunication: Bool {
            self == .classifierCommunication || self == .gradientCommunication || self == .communication
        }

        /// The timeline's category (`cat`).
        public var category: String {
            switch self {
            case .classifierCommunication, .gradientCommunication, .communication: return "communication"
            case .classifierOptimizer: return "optimizer"
            default: return "\(self)"
            }
        }
    }

    /// Seconds (exclusive), seconds in flight and bytes per phase since the
    /// process started; subtract two readings for an interval.
    public struct Totals: Sendable {
        public var seconds = [Double](repeating: 0, count: Phase.allCases.count)
        /// Collectives from their start to the call that saw them complete: a
        /// nonblocking one's whole flight (bounded below by its real duration,
        /// above by the polling granularity); a blocking one's call.
        public var inFlight = [Double](repeating: 0, count: Phase.allCases.count)
        /// Bytes of the collectives started (a nonblocking one's wait adds none).
        public var bytes = [Int](repeating: 0, count: Phase.allCases.count)
        public init() {}

        public subscript(_ phase: Phase) -> Double { seconds[phase.rawValue] }

        public static func - (a: Totals, b: Totals) -> Totals {
            var d = Totals()
            for k in 0..<Phase.allCases.count {
                d.seconds[k] = a.seconds[k] - b.seconds[k]
                d.inFlight[k] = a.inFlight[k] - b.inFlight[k]
                d.bytes[k] = a.bytes[k] - b.bytes[k]
            }
            return d
        }

        /// All three communication phases.
        public var communication: Double {
            self[.classifierCommunication] + self[.gradientCommunication] + self[.communication]
        }
    }

    public struct Event: Sendable {
        public let name: String
        public let category: String
        public let track: Int
        /// Monotonic nanoseconds (DispatchTime's uptime clock) of this process.
        public let start: UInt64
        public let duration: UInt64
        public let args: [(String, Double)]
    }

    /// Whether spans become events; set around the `--timeline-steps` window.
    nonisolated(unsafe) public static var recording = false
    /// Whether a timeline was asked for at all (the window logic reads it).
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var events: [Event] = []
    nonisolated(unsafe) public private(set) static var totals = Totals()

    private struct Open {
        let label: StaticString
        let phase: Phase
        let start: UInt64
        /// Nanoseconds of the spans closed inside this one.
        var nested: UInt64 = 0
        /// The event's name, when recording at the start (else nil: no event).
        var name: String?
    }
    nonisolated(unsafe) private static var open: [Open] = []

    @inline(__always)
    static func clock() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// The phase and label of the innermost open span (nil: none).
    public static var current: (phase: Phase, label: StaticString)? {
        open.last.map { ($0.phase, $0.label) }
    }

    /// The innermost open span's event name (nil when not recording).
    public static var currentName: String? { open.last?.name }

    /// Opens a span; `phase` nil: the enclosing span's. Close it with `end`.
    @inline(__always)
    public static func begin(_ label: StaticString, _ phase: Phase? = nil,
                             name: @autoclosure () -> String? = nil) {
        begin(label, phase, event: true, name: name())
    }

    @inline(__always)
    static func begin(_ label: StaticString, _ phase: Phase?, event: Bool, name: @autoclosure () -> String?) {
        let p = phase ?? open.last?.phase ?? .other
        open.append(Open(label: label, phase: p, start: clock(), name: event && recording ? (name() ?? "\(label)") : nil))
    }

    /// Closes the innermost span: its exclusive seconds to its phase, and an
    /// event (named `name`, else as at `begin`) if recording both then and now.
    /// Returns the span's whole duration in nanoseconds.
    @inline(__always) @discardableResult
    public static func end(name: @autoclosure () -> String? = nil, args: @autoclosure () -> [(String, Double)] = []) -> UInt64 {
        let now = clock()
        let s = open.removeLast()
        let elapsed = now &- s.start
        totals.seconds[s.phase.rawValue] += Double(elapsed &- s.nested) * 1e-9
        if !open.isEmpty { open[open.count - 1].nested &+= elapsed }
        if recording, let n = s.name {
            events.append(Event(name: name() ?? n, category: s.phase.category, track: mainTrack, start: s.start,
                                duration: elapsed, args: args()))
        }
        return elapsed
    }

    /// `body` as one span.
    @inline(__always)
    public static func span<T>(_ label: StaticString, _ phase: Phase? = nil, name: @autoclosure () -> String? = nil,
                               _ body: () throws -> T) rethrows -> T {
        begin(label, phase, name: name())
        defer { end() }
        return try body()
    }

    /// A communication call `op` of `bytes` as a span of the communication
    /// phase its context implies; on the timeline (unless `event` is false, as
    /// for the polls of nonblocking requests) the classifier's by their role in
    /// the design doc ("allgather H"), others as "context: op". `blocking`:
    /// its time is also its time in flight.
    @inline(__always)
    public static func collective<T>(_ op: StaticString, bytes: Int, blocking: Bool = true, event: Bool = true,
                                     _ body: () throws -> T) rethrows -> T {
        let phase = communicationPhase
        begin(op, phase, event: event, name: collectiveName(op))
        defer {
            let elapsed = end(args: [("bytes", Double(bytes))])
            totals.bytes[phase.rawValue] += bytes
            if blocking { totals.inFlight[phase.rawValue] += Double(elapsed) * 1e-9 }
        }
        return try body()
    }

    /// A nonblocking collective's flight, from its start to the call that saw
    /// it complete: booked in flight (not as exposed time) and, if recording,
    /// an event on the in-flight track.
    public static func inFlight(_ name: String?, phase: Phase, start: UInt64, end: UInt64, bytes: Int) {
        totals.inFlight[phase.rawValue] += Double(end &- start) * 1e-9
        if recording, let name {
            events.append(Event(name: name, category: phase.category, track: inFlightTrack, start: start,
                                duration: end > start ? end - start : 0, args: [("bytes", Double(bytes))]))
        }
    }

    /// The communication phase of a collective called now.
    public static var communicationPhase: Phase {
        guard let p = open.last?.phase else { return .communication }
        if p == .classifier { return .classifierCommunication }
        return p.isCommunication ? p : .communication
    }

    private static func collectiveName(_ op: StaticString) -> String? {
        guard recording else { return nil }
        guard let inner = open.last else { return "\(op)" }
        if inner.phase == .classifier {
            switch "\(op)" {
            case "allgatherv": return "allgather H"
            case "reduce_scatterv": return "reduce-scatter dH"
            case "allreduce_max": return "allreduce max"
            case "allreduce_sum": return "allreduce sum"
            default: return "classifier: \(op)"
            }
        }
        return inner.phase.isCommunication ? "\(inner.name ?? "\(inner.label)"): \(op)" : "\(op)"
    }

    /// Hands over the events recorded so far and clears the buffer.
    public static func drain() -> [Event] {
        defer { events = [] }
        return events
    }
}
