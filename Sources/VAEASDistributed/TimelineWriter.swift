import VAEASCore
import Dispatch
import Foundation
import SafeTensors

/// `--timeline FILE.json`: every rank's `Trace` events of a window of
/// optimizer steps, merged by rank 0 into one Chrome trace (the
/// `traceEvents` JSON that chrome://tracing and https://ui.perfetto.dev open),
/// one process track per rank (pid = rank; tid 0 = compute with the blocking
/// collectives nested in it, tid 1 = nonblocking collectives in flight).
///
/// Clocks: each rank's timestamps are its monotonic clock minus the moment it
/// left a common barrier at `init`, so the ranks' tracks line up to within
/// the barrier's exit skew (microseconds on one host, tens of them over TCP),
/// also across hosts whose clocks differ.
///
/// Window: recording is on from the start of step `window.lowerBound` to the
/// start of step `window.upperBound + 1`, so what follows the window's last
/// step (an evaluation, a checkpoint write at the end of an epoch or run) is
/// in the file too.
public final class TimelineWriter {
    public let path: String
    public let window: ClosedRange<Int>
    public let comm: Communicator
    private let origin: UInt64

    /// Collective (a barrier). Starts no recording by itself: `beginStep` does.
    public init(path: String, window: ClosedRange<Int>, comm: Communicator) {
        self.path = path
        self.window = window
        self.comm = comm
        _ = Trace.drain()
        comm.barrier()
        origin = DispatchTime.now().uptimeNanoseconds
        Trace.enabled = true
    }

    /// Parses `a:b` (1-based optimizer steps, inclusive) or a single step `a`.
    public static func parseWindow(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        if parts.count == 1, let a = parts[0], a >= 1 { return a...a }
        guard parts.count == 2, let a = parts[0], let b = parts[1], a >= 1, b >= a else { return nil }
        return a...b
    }

    /// Called before optimizer step `step` (1-based) starts, on every rank.
    @inline(__always)
    public func beginStep(_ step: Int) {
        Trace.recording = window.contains(step)
    }

    /// Stops recording, gathers every rank's events to rank 0 and writes the
    /// file there. Collective; a write failure is agreed (every rank throws).
    public func finish() throws {
        Trace.recording = false
        Trace.enabled = false
        let events = Trace.drain()
        var local = ""
        for e in events {
            let ts = (Double(Int64(bitPattern: e.start &- origin)) / 1e3)
            var line = "{\"name\":\(JSONText.quoted(e.name)),\"cat\":\(JSONText.quoted(e.category)),\"ph\":\"X\","
            line += "\"ts\":\(Self.number(ts)),\"dur\":\(Self.number(Double(e.duration) / 1e3)),"
            line += "\"pid\":\(comm.rank),\"tid\":\(e.track)"
            if !e.args.isEmpty {
                line += ",\"args\":{" + e.args.map { "\(JSONText.quoted($0.0)):\(Self.number($0.1))" }.joined(separator: ",") + "}"
            }
            local += line + "}"
            local += ",\n"
        }
        let all = comm.gather(bytes: Array(local.utf8), root: 0)
        try comm.rootOnly {
            var out = "{\"displayTimeUnit\":\"ms\",\n\"otherData\":{\"ranks\":\(comm.size),"
            out += "\"steps\":\"\(window.lowerBound):\(window.upperBound)\","
            out += "\"clock\":\"per rank: monotonic clock minus the rank's exit from a common barrier (microseconds)\"},\n"
            out += "\"traceEvents\":[\n"
            for r in 0..<comm.size {
                out += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":\(r),\"args\":{\"name\":\"rank \(r)\"}},\n"
                out += "{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":\(r),\"args\":{\"sort_index\":\(r)}},\n"
                out += "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":\(r),\"tid\":\(Trace.mainTrack),\"args\":{\"name\":\"compute and blocking collectives\"}},\n"
                out += "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":\(r),\"tid\":\(Trace.inFlightTrack),\"args\":{\"name\":\"nonblocking collectives in flight\"}},\n"
            }
            for bytes in all ?? [] { out += String(decoding: bytes, as: UTF8.self) }
            if out.hasSuffix(",\n") { out.removeLast(2) }
            out += "\n]}\n"
            guard FileManager.default.createFile(atPath: path, contents: Data(out.utf8)) else {
                throw TimelineError(path: path, message: "cannot write the timeline: \(String(cString: strerror(errno)))")
            }
        }
    }

    static func number(_ x: Double) -> String { x.isFinite ? String(format: "%.3f", x) : "0" }
}

public struct TimelineError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

extension Communicator {
    /// Every rank's bytes, in rank order, on `root` (nil elsewhere). Collective.
    public func gather(bytes: [UInt8], root: Int) -> [[UInt8]]? {
        if size == 1 { return [bytes] }
        var sizes = [Double](repeating: 0, count: size)
        sizes[rank] = Double(bytes.count)
        sizes = sum(sizes)
        let lengths = sizes.map { Int($0) }
        let words = lengths.map { ($0 + 3) / 4 }
        // Raw bytes carried in Float bit patterns: a gather moves them without arithmetic.
        var mine = [Float](repeating: 0, count: words[rank])
        if !bytes.isEmpty {
            mine.withUnsafeMutableBytes { raw in
                bytes.withUnsafeBytes { raw.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            }
        }
        let counts = RankCounts(words)
        var all = [Float](repeating: 0, count: rank == root ? counts.total : 0)
        mine.withUnsafeBufferPointer { s in
            all.withUnsafeMutableBufferPointer { gatherv(send: s, receive: $0, counts: counts, root: root) }
        }
        guard rank == root else { return nil }
        return all.withUnsafeBytes { raw in
            (0..<size).map { r in
                let start = Int(counts.displacements[r]) * 4
                return Array(raw[start..<(start + lengths[r])])
            }
        }
    }
}
