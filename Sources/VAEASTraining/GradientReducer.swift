import VAEASCore
import VAEASDistributed
import VAEASConfig

/// How the data-parallel step reduces the replicated gradients.
public struct GradientReduction: Sendable, Equatable {
    /// `train.bucket_mb`: 0 = one blocking allreduce of the whole fused buffer after backward.
    public var bucketMB: Double = 0
    /// `train.zero_stage`: 1 = reduce-scatter, Adam on this rank's slice, allgather (ZeRO stage 1).
    public var zeroStage: Int = 0
    public init(bucketMB: Double = 0, zeroStage: Int = 0) { self.bucketMB = bucketMB; self.zeroStage = zeroStage }
    public init(_ t: TrainingConfig) { self.init(bucketMB: t.bucketMB, zeroStage: t.zeroStage) }
}

/// How the replicated gradients are reduced over ranks, and which part of them
/// this rank's Adam then updates (PyTorch DDP's `Reducer`, DeepSpeed's ZeRO):
/// one type per strategy, chosen once at start-up by `makeGradientReducer`
/// from `train.bucket_mb` and `train.zero_stage`. The step calls the same
/// five operations whichever it is: the backward hook, `reduce`, the
/// gradient's squares and scaling (clipping), and `gatherParameters` after
/// the update.
public protocol GradientReducer: AnyObject {
    /// The replicated parameters this rank's optimizer updates: all of them,
    /// or with ZeRO stage 1 block `rank` of a contiguous split over ranks.
    var optimizerSlice: Range<Int> { get }
    /// The reduced gradient of `optimizerSlice` (its element 0 first), valid after `reduce`.
    var reducedGradients: UnsafeMutablePointer<Float> { get }
    /// Whether Adam's moments are sharded over ranks (ZeRO stage 1).
    var shardsOptimizerState: Bool { get }
    /// Gradient buckets reduced during backward (0: one reduction after it).
    var bucketCount: Int { get }
    /// Called by backward as it finishes each layer's gradients (nil: nothing to overlap).
    var layerHook: ((Linear) -> Void)? { get }
    /// Before backward.
    func beginBackward()
    /// After backward: the reduction completed (its time booked by `Trace` as
    /// gradient communication); returns the sum of the reduced elements this
    /// rank holds that the step's finite check must add (ZeRO's slice; 0 when
    /// the step checks them itself).
    func reduce() -> Double
    /// Σ g² over the whole reduced replicated gradient, the same on every rank
    /// (collective with ZeRO, whose ranks each hold a slice).
    func sumOfSquares() -> Double
    /// Multiplies the reduced gradient this rank holds by `c` (clipping).
    func scale(by c: Float)
    /// After Adam updated `optimizerSlice`: every rank's replicated parameters
    /// made whole again (ZeRO's allgather; nothing otherwise).
    func gatherParameters()
    /// Adam's moments of every replicated parameter in parameter order, at
    /// `root` (nil elsewhere); collective with ZeRO.
    func gatherMoments(of optimizer: Adam, root: Int) -> (m: [Float], v: [Float])?
}

/// The strategy of `reduction` over `model`'s fused gradient buffer.
public func makeGradientReducer(_ reduction: GradientReduction, model: VAEASModel, comm: Communicator) -> GradientReducer {
    if reduction.zeroStage == 1 { return ZeRO1Reducer(store: model.parameters, comm: comm) }
    if reduction.bucketMB > 0 {
        return BucketedReducer(buckets: GradientBuckets(table: model.table, store: model.parameters,
                                                        bucketBytes: Int(reduction.bucketMB * 1_048_576)),
                               store: model.parameters, comm: comm)
    }
    return BlockingReducer(store: model.parameters, comm: comm)
}

/// One blocking allreduce of the whole fused buffer after backward (and the
/// shared bookkeeping of the two allreduce strategies).
public class BlockingReducer: GradientReducer {
    let store: ParameterStore
    let comm: Communicator
    init(store: ParameterStore, comm: Communicator) { self.store = store; self.comm = comm }

    public var optimizerSlice: Range<Int> { 0..<store.count }
    public var reducedGradients: UnsafeMutablePointer<Float> { store.grads }
    public var shardsOptimizerState: Bool { false }
    public var bucketCount: Int { 0 }
    public var layerHook: ((Linear) -> Void)? { nil }
    public func beginBackward() {}

    /// One blocking call after backward: all of its time is exposed (and in flight).
    public func reduce() -> Double {
        Trace.span("gradient reduction", .gradientCommunication) {
            Trace.span("gradient allreduce") { comm.allreduceSum(store.gradBuffer) }
        }
        return 0
    }

    public func sumOfSquares() -> Double { Kernels.sumOfSquares(store.grads, count: store.count) }

    public func scale(by c: Float) { for i in 0..<store.count { store.grads[i] *= c } }

    public func gatherParameters() {}

    public func gatherMoments(of optimizer: Adam, root: Int) -> (m: [Float], v: [Float])? {
        guard comm.rank == root else { return nil }
        return (Array(UnsafeBufferPointer(start: optimizer.m, count: store.count)),
                Array(UnsafeBufferPointer(start: optimizer.v, count: store.count)))
    }
}

/// Buckets of whole layers reduced with nonblocking allreduces as backward
/// finishes them (`GradientBuckets`), all waited for before the optimizer.
public final class BucketedReducer: BlockingReducer {
    let buckets: GradientBuckets
    init(buckets: GradientBuckets, store: ParameterStore, comm: Communicator) {
        self.buckets = buckets
        super.init(store: store, comm: comm)
    }

    public override var bucketCount: Int { buckets.ranges.count }
    public override var layerHook: ((Linear) -> Void)? {
        let buckets = buckets, comm = comm
        return { layer in buckets.ready(layer, comm: comm) }
    }
    public override func beginBackward() { buckets.begin() }

    /// The buckets' starts and polls during backward are booked there as
    /// gradient communication (exposed); each bucket's start to the poll or
    /// wait that saw it done, in flight.
    public override func reduce() -> Double {
        Trace.span("gradient reduction", .gradientCommunication) { buckets.finish(comm: comm) }
        return 0
    }
}

/// ZeRO stage 1 (Rajbhandari et al. 2020): the gradients reduce-scattered,
/// each rank's Adam (and its moments) over its own contiguous slice, the
/// updated slices allgathered into every rank's replica.
public final class ZeRO1Reducer: GradientReducer {
    let store: ParameterStore
    let comm: Communicator
    public let optimizerSlice: Range<Int>
    private let counts: RankCounts
    private let arena = Arena()
    /// This rank's reduced gradient slice, and its parameters' copy for the allgather.
    private let slice: UnsafeMutablePointer<Float>
    private let send: UnsafeMutablePointer<Float>

    init(store: ParameterStore, comm: Communicator) {
        self.store = store
        self.comm = comm
        let split = BlockPartition(total: store.count, parts: comm.size)
        counts = split.rankCounts()
        optimizerSlice = split.range(comm.rank)
        slice = arena.floats(max(optimizerSlice.count, 1))
        send = arena.floats(max(optimizerSlice.count, 1))
    }

    public var reducedGradients: UnsafeMutablePointer<Float> { slice }
    public var shardsOptimizerState: Bool { true }
    public var bucketCount: Int { 0 }
    public var layerHook: ((Linear) -> Void)? { nil }
    public func beginBackward() {}

    public func reduce() -> Double {
        Trace.span("gradient reduction", .gradientCommunication) {
            Trace.span("ZeRO gradient reduce-scatter") {
                comm.reduceScatterv(send: UnsafeBufferPointer(store.gradBuffer),
                                    receive: UnsafeMutableBufferPointer(start: slice, count: optimizerSlice.count),
                                    counts: counts)
            }
        }
        // Each rank holds only its slice of the reduced gradient: its sum joins the step's finite check.
        return Kernels.sum(slice, count: optimizerSlice.count)
    }

    public func sumOfSquares() -> Double { comm.sum([Kernels.sumOfSquares(slice, count: optimizerSlice.count)])[0] }

    public func scale(by c: Float) { for i in 0..<optimizerSlice.count { slice[i] *= c } }

    public func gatherParameters() {
        Trace.span("ZeRO parameter allgather", .communication) {
            let n = optimizerSlice.count
            send.update(from: store.values + optimizerSlice.lowerBound, count: n)
            comm.allgatherv(send: UnsafeBufferPointer(start: send, count: n), receive: store.valueBuffer, counts: counts)
        }
    }

    public func gatherMoments(of optimizer: Adam, root: Int) -> (m: [Float], v: [Float])? {
        var m = [Float](repeating: 0, count: comm.rank == root ? store.count : 0), v = m
        let n = optimizerSlice.count
        m.withUnsafeMutableBufferPointer {
            comm.gatherv(send: UnsafeBufferPointer(start: optimizer.m, count: n), receive: $0, counts: counts, root: root)
        }
        v.withUnsafeMutableBufferPointer {
            comm.gatherv(send: UnsafeBufferPointer(start: optimizer.v, count: n), receive: $0, counts: counts, root: root)
        }
        return comm.rank == root ? (m, v) : nil
    }
}
