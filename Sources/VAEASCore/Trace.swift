import Dispatch

/// This process's (one rank's) timeline events, for `--timeline`: complete
/// events ("X" in Chrome's trace format) with a name, a category, the track
/// (`tid`) and a few numeric arguments (byte counts). Off by default: every
/// recording call starts with one test of `recording`, so the instrumented
/// code costs a branch when no timeline is asked for.
///
/// Only the recorder lives here (no MPI, no collectives): `TimelineWriter`
/// (VAEASDistributed) aligns the ranks' clocks, gathers the events to rank 0
/// through the `Communicator` and writes the Chrome trace JSON.
public enum Trace {
    /// Tracks within a rank's process: compute (and the blocking collectives
    /// nested in it), and the nonblocking collectives in flight beside it.
    public static let mainTrack = 0
    public static let inFlightTrack = 1

    public struct Event: Sendable {
        public let name: String
        public let category: String
        public let track: Int
        /// Monotonic nanoseconds (DispatchTime's uptime clock) of this process.
        public let start: UInt64
        public let duration: UInt64
        public let args: [(String, Double)]
    }

    /// Whether calls record; set around the `--timeline-steps` window.
    nonisolated(unsafe) public static var recording = false
    /// Whether a timeline was asked for at all (the window logic reads it).
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var events: [Event] = []

    /// The current time if recording, else 0 (cheap): pass it to `complete`.
    @inline(__always)
    public static func now() -> UInt64 { recording ? DispatchTime.now().uptimeNanoseconds : 0 }

    /// Records an event from `start` (a `now()`) to now. No-op when not recording
    /// or when `start` is 0 (recording began inside the interval).
    @inline(__always)
    public static func complete(_ name: @autoclosure () -> String, _ category: StaticString, since start: UInt64,
                                track: Int = mainTrack, args: @autoclosure () -> [(String, Double)] = []) {
        guard recording, start != 0 else { return }
        let end = DispatchTime.now().uptimeNanoseconds
        events.append(Event(name: name(), category: "\(category)", track: track, start: start,
                            duration: end &- start, args: args()))
    }

    /// Records an event with explicit times (e.g. a nonblocking collective's
    /// start and the poll that saw it finish).
    public static func record(_ name: String, _ category: String, start: UInt64, end: UInt64, track: Int,
                              args: [(String, Double)] = []) {
        guard recording, start != 0 else { return }
        events.append(Event(name: name, category: category, track: track, start: start,
                            duration: end > start ? end - start : 0, args: args))
    }

    /// Times `body` as one event.
    @inline(__always)
    public static func span<T>(_ name: @autoclosure () -> String, _ category: StaticString,
                               _ body: () throws -> T) rethrows -> T {
        let t = now()
        defer { complete(name(), category, since: t) }
        return try body()
    }

    /// Hands over the events recorded so far and clears the buffer.
    public static func drain() -> [Event] {
        defer { events = [] }
        return events
    }
}
