import VAEASConfig
import VAEASCore

/// The collectives the model and trainer use (Megatron-LM's `mappings` layer):
/// model code names an operation, never MPI. `MPICommunicator` runs them over
/// MPI_COMM_WORLD; `LocalCommunicator` is the one-process identity.
///
/// Every call is collective: all ranks call it, in the same order, with
/// matching sizes.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Elementwise sum over ranks, in place.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Elementwise maximum over ranks, in place.
    func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Float>)
    func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Rank r contributes `send` (counts[r] floats); `receive` gets every
    /// rank's block in rank order (Σ counts floats).
    func allgatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>,
                    counts: RankCounts)
    /// `send` holds Σ counts floats; they are summed over ranks and rank r
    /// receives block r (counts[r] floats).
    func reduceScatterv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>,
                        counts: RankCounts)
    /// Rank r contributes `send` (counts[r] floats); only `root` receives, in
    /// rank order (`receive` is ignored elsewhere and may be empty there).
    func gatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>,
                 counts: RankCounts, root: Int)
    /// `buffer` on every rank becomes root's.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int)
    func barrier()

    /// Starts an elementwise sum over ranks in place without waiting
    /// (MPI_Iallreduce): `buffer` must not be read or written until `wait`.
    /// Every rank starts the same requests in the same order. A default
    /// implementation reduces at once and returns a completed request.
    func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest
    /// Whether `request` has completed; also drives progress (Open MPI advances
    /// a nonblocking collective only inside MPI calls), so poll it between work.
    func test(_ request: CollectiveRequest) -> Bool
    /// Blocks until `request` has completed.
    func wait(_ request: CollectiveRequest)
}

/// A nonblocking collective in flight (an MPI_Request for `MPICommunicator`).
public final class CollectiveRequest {
    /// The implementation's handle (MPI_Request), nil once complete.
    public var handle: OpaquePointer?
    public var isComplete: Bool
    /// Elements and bytes reduced (for the timeline and `bench`).
    public let count: Int
    public init(handle: OpaquePointer?, isComplete: Bool, count: Int) {
        self.handle = handle; self.isComplete = isComplete; self.count = count
    }
}

extension Communicator {
    public func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest {
        allreduceSum(buffer)
        return CollectiveRequest(handle: nil, isComplete: true, count: buffer.count)
    }
    public func test(_ request: CollectiveRequest) -> Bool { request.isComplete }
    public func wait(_ request: CollectiveRequest) { request.isComplete = true }
}

/// Per-rank element counts and their offsets, computed once outside the step
/// loop (MPI's v-collectives take them as Int32 arrays).
public struct RankCounts: Sendable, Equatable {
    public let counts: [Int32]
    public let displacements: [Int32]
    public var total: Int { Int(counts.reduce(0, +)) }

    public init(_ counts: [Int]) {
        self.counts = counts.map { Int32($0) }
        var d: [Int32] = []
        var acc: Int32 = 0
        for c in counts { d.append(acc); acc += Int32(c) }
        displacements = d
    }
}

/// Contiguous split of n items over `parts`: part r gets [⌊n·r/P⌋, ⌊n·(r+1)/P⌋),
/// sizes differing by at most one (design doc: batch slices and label rows).
public struct BlockPartition: Sendable, Equatable {
    public let total: Int
    public let parts: Int

    public init(total: Int, parts: Int) {
        precondition(parts >= 1 && total >= 0)
        self.total = total; self.parts = parts
    }

    public func range(_ part: Int) -> Range<Int> { (total * part / parts)..<(total * (part + 1) / parts) }
    public func count(_ part: Int) -> Int { range(part).count }
    public var maxCount: Int { (total + parts - 1) / parts }
    /// RankCounts with `width` elements per item.
    public func rankCounts(width: Int = 1) -> RankCounts { RankCounts((0..<parts).map { count($0) * width }) }
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// Sum of a few Doubles over ranks (metrics), returned.
    public func sum(_ values: [Double]) -> [Double] {
        var v = values
        v.withUnsafeMutableBufferPointer { allreduceSum($0) }
        return v
    }

    public func max(_ values: [Double]) -> [Double] {
        var v = values
        v.withUnsafeMutableBufferPointer { allreduceMax($0) }
        return v
    }

    /// Root's bytes on every rank (e.g. a status or a path chosen by rank 0).
    public func broadcast(bytes: [UInt8], root: Int = 0) -> [UInt8] {
        var n = [UInt64(bytes.count)]
        n.withUnsafeMutableBytes { broadcast($0, root: root) }
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(n[0]))
        out.withUnsafeMutableBytes { broadcast($0, root: root) }
        return out
    }

    /// Runs `body` on root only and makes its outcome collective: if root
    /// throws, every rank throws (root its own error, the others
    /// `PeerFailure`), so no rank is left waiting in a later collective.
    public func rootOnly<T>(_ body: () throws -> T) throws -> T? {
        var result: T? = nil
        var failure: Error? = nil
        var message: [UInt8] = []
        if isRoot {
            do { result = try body() } catch {
                failure = error
                message = Array("\(error)".utf8)
                if message.isEmpty { message = Array("error".utf8) }
            }
        }
        let status = broadcast(bytes: message)
        if let failure { throw AgreedFailure(rank: 0, underlying: failure) }
        if !status.isEmpty { throw PeerFailure(rank: 0, message: String(decoding: status, as: UTF8.self)) }
        return result
    }
}

extension Communicator {
    /// Every rank's short string (≤ `maxBytes` UTF-8 bytes, longer ones cut), in rank order, on every rank.
    public func allgather(_ text: String, maxBytes: Int = 128) -> [String] {
        var mine = [Float](repeating: 0, count: maxBytes)
        for (i, b) in Array(text.utf8.prefix(maxBytes)).enumerated() { mine[i] = Float(b) }
        var all = [Float](repeating: 0, count: maxBytes * size)
        mine.withUnsafeBufferPointer { s in
            all.withUnsafeMutableBufferPointer { allgatherv(send: s, receive: $0, counts: RankCounts(Array(repeating: maxBytes, count: size))) }
        }
        return (0..<size).map { r in
            String(decoding: all[(r * maxBytes)..<((r + 1) * maxBytes)].prefix { $0 != 0 }.map { UInt8($0) }, as: UTF8.self)
        }
    }

    /// Runs `body` on every rank and makes the outcome collective: if any rank
    /// throws, every rank throws (the lowest failing rank's error is sent to
    /// the others as a `PeerFailure` naming that rank), so no rank goes on into
    /// a collective the failed one will never reach. Use at phase boundaries
    /// (data loading, checkpoint writes).
    public func agree<T>(_ body: () throws -> T) throws -> T {
        var result: T? = nil
        var failure: Error? = nil
        do { result = try body() } catch { failure = error }
        // Lowest failing rank, or size when none failed: max over ranks of −rank.
        let lowest = -Int(max([failure == nil ? -Double(size) : -Double(rank)])[0])
        if lowest < size {
            let text = rank == lowest ? "\(failure!)" : ""
            let message = String(decoding: broadcast(bytes: Array(text.utf8), root: lowest), as: UTF8.self)
            if rank == lowest { throw AgreedFailure(rank: rank, underlying: failure!) }
            throw PeerFailure(rank: lowest, message: message)
        }
        return result!
    }
}

/// An error every rank raises together (after a collective agreement), so
/// every rank can stop normally: no rank is left waiting in a collective.
/// Any other error on one rank of several ends the job with MPI_Abort.
public protocol CollectiveError: Error {}

/// This rank failed, and every other rank knows (they throw `PeerFailure`):
/// this rank prints the error.
public struct AgreedFailure: CollectiveError, CustomStringConvertible {
    public let rank: Int
    public let underlying: Error
    public var description: String { "\(underlying)" }
}

/// Another rank failed; this one stops too. Its message is not printed again.
public struct PeerFailure: CollectiveError, CustomStringConvertible {
    public let rank: Int
    public let message: String
    public var description: String { "rank \(rank) failed: \(message)" }
}

/// One process: every collective is the identity (with P = 1 a sum, a max, a
/// gather and a scatter of one block are copies).
public final class LocalCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func allgatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>,
                           counts: RankCounts) {
        precondition(send.count >= Int(counts.counts[0]) && receive.count >= counts.total)
        if send.baseAddress != UnsafePointer(receive.baseAddress) {
            receive.baseAddress!.update(from: send.baseAddress!, count: Int(counts.counts[0]))
        }
    }
    public func reduceScatterv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>,
                               counts: RankCounts) {
        precondition(send.count >= counts.total && receive.count >= Int(counts.counts[0]))
        if send.baseAddress != UnsafePointer(receive.baseAddress) {
            receive.baseAddress!.update(from: send.baseAddress!, count: Int(counts.counts[0]))
        }
    }
    public func gatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>,
                        counts: RankCounts, root: Int) {
        allgatherv(send: send, receive: receive, counts: counts)
    }
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {}
    public func barrier() {}
}
