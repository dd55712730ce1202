import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import VAEASConfig
import VAEASData

/// Adam's hyperparameters (`train.lr`, `beta1`, `beta2`, `eps`).
public struct OptimizerSettings: Sendable, Equatable {
    public var lr: Float, beta1: Float, beta2: Float, eps: Float
    public init(lr: Float, beta1: Float, beta2: Float, eps: Float) {
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
    }
    public init(_ t: TrainingConfig) {
        self.init(lr: Float(t.lr), beta1: Float(t.beta1), beta2: Float(t.beta2), eps: Float(t.eps))
    }
}

/// One data-parallel optimizer step (design doc, "Data parallelism"), top to
/// bottom: this rank's slice of the global batch → its inputs (binarized x,
/// noise ε, keyed by sample index, never by rank) → the model's forward and
/// backward → one fused allreduce of the replicated gradients (and of the
/// loss sums) → the collective finite check → the same Adam update on every
/// rank, and each rank's update of its own classifier rows.
public final class DataParallelStep {
    public let model: VAEASModel
    /// Every collective goes through it, so `phases.communication` can be measured.
    public let comm: TimedCommunicator
    public let feed: DataFeed
    public let noise: NoiseSource
    public let optimizer: Adam
    public let settings: OptimizerSettings
    /// Optimizer steps taken (restored on resume).
    public internal(set) var globalStep = 0
    /// This rank's requests for the next step boundary, summed over ranks with
    /// the step's loss sums (no extra collective): after a step, `agreedStop` /
    /// `agreedCheckpoint` say whether any rank asked.
    public var requestStop = false
    public var requestCheckpoint = false
    public private(set) var agreedStop = false
    public private(set) var agreedCheckpoint = false
    /// Seconds per phase on this rank (for `bench`).
    public var phases = PhaseTimes()
    private let arena = Arena()
    /// This rank's inputs: x (capacity × input) and ε (capacity·L × D).
    private let x: UnsafeMutablePointer<Float>
    private let eps: UnsafeMutablePointer<Float>

    public init(model: VAEASModel, feed: DataFeed, settings: OptimizerSettings) {
        self.model = model
        guard let timed = model.comm as? TimedCommunicator else {
            preconditionFailure("DataParallelStep: build the model over a TimedCommunicator")
        }
        comm = timed
        self.feed = feed
        self.settings = settings
        noise = NoiseSource(seed: model.spec.seed, latent: model.spec.shape.latent, samples: model.samples)
        optimizer = Adam(count: model.parameters.count, lr: settings.lr, beta1: settings.beta1, beta2: settings.beta2,
                         eps: settings.eps)
        x = arena.floats(model.localCapacity * feed.dimension)
        eps = arena.floats(model.localCapacity * model.samples * model.spec.shape.latent)
    }

    /// Builds, initialises and wraps the model of `config` over `train`.
    public static func make(config: TrainConfig, train: Dataset, comm: Communicator, localCapacity: Int = 0,
                            allowUnusedLabels: Bool = false) throws -> DataParallelStep {
        guard train.count >= 1 else {
            throw ConfigError(key: "data.limit", source: nil, message: "the training set is empty")
        }
        let spec = try ModelSpec(config: config, inputDimension: train.dimension, trainSamples: train.count,
                                 allowUnusedLabels: allowUnusedLabels)
        let model = try VAEASModel(spec: spec, samples: config.train.samples, batch: config.train.batch,
                                   localCapacity: localCapacity, trainSet: train, comm: TimedCommunicator(comm))
        model.initialize()
        let feed = DataFeed(dataset: train, binarization: config.data.binarize, seed: spec.seed)
        return DataParallelStep(model: model, feed: feed, settings: OptimizerSettings(config.train))
    }

    public var batchSize: Int { model.batchCapacity }
    public var stepsPerEpoch: Int { (feed.count + batchSize - 1) / batchSize }

    /// The epoch's order of sample indices: the same on every rank.
    public func permutation(epoch: Int) -> [Int32] {
        Philox(seed: model.spec.seed, purpose: .permutation).permutation(feed.count, stream: UInt32(truncatingIfNeeded: epoch))
    }

    /// One optimizer step on the global batch `batch` (global sample indices).
    @discardableResult
    public func callAsFunction(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) throws -> StepStats {
        let (stats, shardSum) = computeGradients(batch, epoch: epoch)
        var clock = PhaseClock()
        globalStep += 1
        // Every rank holds the same reduced sums, so every rank takes these branches together.
        if !(stats.recon + stats.kl + stats.crossEntropy + stats.hHat).isFinite {
            throw NonFiniteError(epoch: epoch, step: globalStep, what: "loss")
        }
        let p = model.parameters
        if !(Kernels.sum(p.grads, count: p.count) + shardSum).isFinite {
            throw NonFiniteError(epoch: epoch, step: globalStep, what: "gradient")
        }
        optimizer.update(p.values, grads: p.grads)
        phases.optimizer += clock.lap()
        let s = settings
        model.classifier?.output.applyUpdate(lr: s.lr, beta1: s.beta1, beta2: s.beta2, eps: s.eps)
        phases.classifierOptimizer += clock.lap()
        return stats
    }

    /// Forward and backward on the global batch, gradients reduced over ranks:
    /// `model.parameters.grads` holds ∂L_φθ/∂(φ, θ) for the encoder and decoder
    /// and ∂(mean CE)/∂ω for the classifier's hidden layers; the partitioned
    /// rows' gradients are in the classifier's own store. Also returns the sum
    /// of those local gradients, reduced (NaN if any rank has a non-finite one).
    public func computeGradients(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> (StepStats, Double) {
        let b = batch.count
        let local = shard(batch)
        let n = local.count
        var clock = PhaseClock()
        model.zeroGrads()
        // Every rank runs every call below, even with n = 0 (a short last batch
        // over many ranks): the classifier's collectives need all of them.
        feed.fill(x, indices: local, epoch: epoch)
        noise.fill(eps, indices: local, epoch: epoch)
        phases.data += clock.lap()
        let scale = 1 / Float(b)
        var stats = model.forward(x: x, eps: eps, n: n, batch: batch, gradScale: scale, times: &phases)
        model.backward(x: x, eps: eps, n: n, gradScale: scale, times: &phases)
        // The partitioned rows' gradients are local: their finiteness joins the step's sums.
        let shardSum = model.shardGradientCheck()
        phases.backward += clock.lap()
        comm.allreduceSum(model.parameters.gradBuffer)
        var sums = (stats.recon, stats.kl, shardSum, requestStop ? 1.0 : 0, requestCheckpoint ? 1.0 : 0)
        withUnsafeMutableBytes(of: &sums) { raw in comm.allreduceSum(raw.bindMemory(to: Double.self)) }
        phases.communication += clock.lap()
        stats.recon = sums.0
        stats.kl = sums.1
        stats.count = b
        agreedStop = sums.3 > 0
        agreedCheckpoint = sums.4 > 0
        return (stats, sums.2)
    }

    /// Forward-only sums over `batch` (recon, KL, and the classifier's CE and
    /// Ĥ), reduced over ranks, with the same inputs `computeGradients` uses
    /// for the same (batch, epoch).
    public func forwardStats(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> StepStats {
        let local = shard(batch)
        feed.fill(x, indices: local, epoch: epoch)
        noise.fill(eps, indices: local, epoch: epoch)
        var stats = model.forward(x: x, eps: eps, n: local.count, batch: batch, gradScale: nil, times: &phases)
        let s = comm.sum([stats.recon, stats.kl])
        stats.recon = s[0]; stats.kl = s[1]; stats.count = batch.count
        return stats
    }

    /// L_φθ and the classifier's mean CE on `batch`, forward only: what finite
    /// differences of `computeGradients` are taken against.
    public func losses(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> (objective: Double, classifierCE: Double) {
        model.objective.value(forwardStats(batch, epoch: epoch))
    }

    /// The reported terms over the whole training set in order, forward only,
    /// in batches of the training batch (the classifier's estimates as
    /// `metrics.jsonl` reports them, but for fixed parameters).
    public func trainingSetSummary() -> [(String, Double)] {
        let n = feed.count, b = batchSize
        let all = (0..<Int32(n)).map { $0 }
        var total = StepStats()
        all.withUnsafeBufferPointer { p in
            var lo = 0
            while lo < n {
                let hi = min(lo + b, n)
                total.add(forwardStats(UnsafeBufferPointer(rebasing: p[lo..<hi]), epoch: 0))
                lo = hi
            }
        }
        return model.objective.summary(total)
    }

    /// FNV-1a of the replicated parameter bytes, as two exact 32-bit halves;
    /// equal max and min over ranks means bit-identical replicas.
    public func replicasIdentical() -> Bool {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        UnsafeRawBufferPointer(model.parameters.valueBuffer).forEach { h = (h ^ UInt64($0)) &* 0x100_0000_01b3 }
        let parts = [Double(h >> 32), Double(h & 0xFFFF_FFFF)]
        let hi = comm.max(parts)
        let lo = comm.max(parts.map { -$0 })
        return hi[0] == -lo[0] && hi[1] == -lo[1]
    }

    /// Sum of the replicated parameters (Double): comparable across rank counts up to rounding.
    public var parameterSum: Double { Kernels.sum(model.parameters.values, count: model.parameters.count) }

    /// This rank's contiguous slice of the batch.
    private func shard(_ batch: UnsafeBufferPointer<Int32>) -> UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(rebasing: batch[BlockPartition(total: batch.count, parts: comm.size).range(comm.rank)])
    }
}
