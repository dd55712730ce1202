import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import VAEASConfig
import VAEASData
import Foundation

/// Adam's hyperparameters (`train.lr`, `beta1`, `beta2`, `eps`), the
/// classifier's group (`train.cls_lr`, `train.cls_steps`), the schedule and
/// the gradient clip.
public struct OptimizerSettings: Sendable, Equatable {
    public var lr: Float, beta1: Float, beta2: Float, eps: Float
    /// The classifier's base rate (= `lr` unless `train.cls_lr` is set) and its updates per step.
    public var classifierLR: Float
    public var classifierSteps: Int
    public var schedule: LearningRateSchedule
    /// 0 = off.
    public var clipGradNorm: Double
    public init(lr: Float, beta1: Float, beta2: Float, eps: Float, classifierLR: Float? = nil, classifierSteps: Int = 1,
                schedule: LearningRateSchedule = LearningRateSchedule(), clipGradNorm: Double = 0) {
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.classifierLR = classifierLR ?? lr; self.classifierSteps = classifierSteps
        self.schedule = schedule; self.clipGradNorm = clipGradNorm
    }
    public init(_ t: TrainingConfig) {
        self.init(lr: Float(t.lr), beta1: Float(t.beta1), beta2: Float(t.beta2), eps: Float(t.eps),
                  classifierLR: t.clsLR > 0 ? Float(t.clsLR) : nil, classifierSteps: t.clsSteps,
                  schedule: LearningRateSchedule(warmupSteps: t.warmupSteps, kind: t.lrSchedule),
                  clipGradNorm: t.clipGradNorm)
    }
}

/// The learning-rate factor of optimizer step t (1-based): linear warm-up
/// over `warmupSteps` (Goyal et al. 2017), then constant or a cosine decay to
/// 0 at `totalSteps` (Loshchilov & Hutter 2017). A pure function of t, so a
/// resumed run continues the same curve.
public struct LearningRateSchedule: Sendable, Equatable {
    public var warmupSteps: Int
    public var kind: LRSchedule
    public init(warmupSteps: Int = 0, kind: LRSchedule = .constant) { self.warmupSteps = warmupSteps; self.kind = kind }

    public func factor(step t: Int, totalSteps: Int) -> Float {
        if warmupSteps > 0 && t < warmupSteps { return Float(t) / Float(warmupSteps) }
        switch kind {
        case .constant: return 1
        case .cosine:
            let span = max(1, totalSteps - warmupSteps)
            let progress = min(1, Double(max(0, t - warmupSteps)) / Double(span))
            return Float(0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}

/// KL annealing's factor at optimizer step t (1-based): t / T up to T, then 1.
public func klAnnealFactor(step t: Int, annealSteps: Int) -> Double {
    annealSteps > 0 && t < annealSteps ? Double(t) / Double(annealSteps) : 1
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
    /// Adam over the replicated parameters: all of them, or with ZeRO stage 1
    /// this rank's slice `optimizerSlice` of the flat buffer.
    public let optimizer: Adam
    public let settings: OptimizerSettings
    /// How the replicated gradients are reduced (`train.bucket_mb`, `train.zero_stage`).
    public let reduction: GradientReduction
    /// The replicated parameters this rank's optimizer updates: all of them,
    /// or with ZeRO stage 1 block `rank` of a contiguous split over ranks.
    public let optimizerSlice: Range<Int>
    /// `--timeline`: starts and stops recording at its window's steps.
    public var timeline: TimelineWriter?
    /// Optimizer steps taken (restored on resume).
    public internal(set) var globalStep = 0
    /// Adam steps of the classifier's group (its hidden layers; the output
    /// layer's own Adam counts the same): `train.cls_steps` per optimizer step.
    public internal(set) var classifierAdamStep = 0
    /// Optimizer steps of the whole run (for the cosine schedule); set by the loop.
    public var totalSteps = 0
    /// `objective.kl_anneal_steps` (0 = off).
    public var klAnnealSteps = 0
    /// The last step's learning rates after the schedule, and its gradient
    /// norm before clipping (nil unless clipping computed it).
    public private(set) var lastLR: Float = 0
    public private(set) var lastLRFactor: Float = 1
    public private(set) var lastClassifierLR: Float = 0
    public private(set) var lastGradNorm: Double?
    /// This rank's requests for the next step boundary, summed over ranks with
    /// the step's loss sums (no extra collective): after a step, `agreedStop` /
    /// `agreedCheckpoint` say whether any rank asked.
    public var requestStop = false
    public var requestCheckpoint = false
    public private(set) var agreedStop = false
    public private(set) var agreedCheckpoint = false
    /// Σ g² over the replicated gradient of the last step (the same on every
    /// rank: the gradient is reduced), for the logged gradient norm.
    public private(set) var replicatedGradientSquares = 0.0
    /// Seconds per phase on this rank (for `bench`).
    public var phases = PhaseTimes()
    private let arena = Arena()
    /// This rank's inputs: x (capacity × input) and ε (capacity·L × D).
    private let x: UnsafeMutablePointer<Float>
    private let eps: UnsafeMutablePointer<Float>
    /// Bucketed reduction: the buckets and this step's requests.
    private let buckets: GradientBuckets?
    /// ZeRO stage 1: this rank's reduced gradient slice, and its parameters' copy for the allgather.
    private let sliceGrads: UnsafeMutablePointer<Float>?
    private let sliceSend: UnsafeMutablePointer<Float>?
    private let sliceCounts: RankCounts

    public init(model: VAEASModel, feed: DataFeed, settings: OptimizerSettings,
                reduction: GradientReduction = GradientReduction()) {
        self.model = model
        guard let timed = model.comm as? TimedCommunicator else {
            preconditionFailure("DataParallelStep: build the model over a TimedCommunicator")
        }
        comm = timed
        self.feed = feed
        self.settings = settings
        self.reduction = reduction
        noise = NoiseSource(seed: model.spec.seed, latent: model.spec.shape.latent, samples: model.samples)
        let count = model.parameters.count
        let split = BlockPartition(total: count, parts: timed.size)
        sliceCounts = split.rankCounts()
        optimizerSlice = reduction.zeroStage == 1 ? split.range(timed.rank) : 0..<count
        optimizer = Adam(count: optimizerSlice.count, lr: settings.lr, beta1: settings.beta1, beta2: settings.beta2,
                         eps: settings.eps)
        x = arena.floats(model.localCapacity * feed.dimension)
        eps = arena.floats(model.localCapacity * model.samples * model.spec.shape.latent)
        if reduction.zeroStage == 1 {
            sliceGrads = arena.floats(max(optimizerSlice.count, 1))
            sliceSend = arena.floats(max(optimizerSlice.count, 1))
            buckets = nil
        } else {
            sliceGrads = nil
            sliceSend = nil
            buckets = reduction.bucketMB > 0
                ? GradientBuckets(table: model.table, store: model.parameters, bucketBytes: Int(reduction.bucketMB * 1_048_576))
                : nil
        }
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
        return DataParallelStep(model: model, feed: feed, settings: OptimizerSettings(config.train),
                                reduction: GradientReduction(config.train))
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
        timeline?.beginStep(globalStep + 1)
        let stepStart = Trace.now()
        defer { Trace.complete("step \(globalStep)", "step", since: stepStart) }
        // KL annealing and the schedule are functions of the step about to be taken.
        let t = globalStep + 1
        model.klAnnealFactor = klAnnealFactor(step: t, annealSteps: klAnnealSteps)
        let (stats, shardSum) = computeGradients(batch, epoch: epoch)
        var clock = PhaseClock()
        globalStep = t
        // Every rank holds the same reduced sums, so every rank takes these branches together.
        if !(stats.recon + stats.kl + stats.crossEntropy + stats.hHat).isFinite {
            throw NonFiniteError(epoch: epoch, step: globalStep, what: "loss")
        }
        let p = model.parameters
        // Σg² is the finite check (a non-finite element makes it inf or NaN)
        // and the replicated part of ‖∇‖² that steps.jsonl reports, in one pass.
        // It stays a pass of its own before Adam: folded into Adam's pass, a
        // non-finite gradient would already have changed the parameters when
        // the step stops. With ZeRO each rank holds only its reduced slice, so
        // the slices' squares are summed over ranks (one Double).
        if let sliceGrads {
            replicatedGradientSquares = comm.sum([Kernels.sumOfSquares(sliceGrads, count: optimizerSlice.count)])[0]
        } else {
            replicatedGradientSquares = Kernels.sumOfSquares(p.grads, count: p.count)
        }
        if !(replicatedGradientSquares + shardSum).isFinite {
            throw NonFiniteError(epoch: epoch, step: globalStep, what: "gradient")
        }
        let s = settings
        let f = s.schedule.factor(step: t, totalSteps: totalSteps)
        lastLRFactor = f
        lastLR = s.lr * f
        lastClassifierLR = s.classifierLR * f
        lastGradNorm = nil
        if s.clipGradNorm > 0 { clipGradients(maxNorm: s.clipGradNorm) }
        Trace.span("optimizer (Adam, \(optimizerSlice.count) parameters)", "optimizer") {
            // Two parameter groups (PyTorch's param_groups): the encoder and decoder,
            // and the classifier's hidden layers with their own rate and step count.
            // The rule is elementwise, so with one rate and one count this is
            // bit-identical to one update over the whole buffer (or slice).
            optimizer.countStep()
            classifierAdamStep += 1
            let vae = optimizer.scalars(step: optimizer.step, lr: lastLR)
            let cls = optimizer.scalars(step: classifierAdamStep, lr: lastClassifierLR)
            let cr = model.classifierParameterRange
            // This rank's slice of the flat buffer (all of it without ZeRO), and the groups' parts of it.
            let lo = optimizerSlice.lowerBound, hi = optimizerSlice.upperBound
            func part(_ r: Range<Int>) -> Range<Int> {
                let a = min(max(r.lowerBound, lo), hi) - lo, b = min(max(r.upperBound, lo), hi) - lo
                return a..<max(a, b)
            }
            let vaePart = part(0..<cr.lowerBound), clsPart = part(cr)
            let grads = sliceGrads.map { UnsafePointer($0) } ?? UnsafePointer(p.grads)
            optimizer.update(p.values + lo, grads: grads, range: vaePart, vae)
            optimizer.update(p.values + lo, grads: grads, range: clsPart, cls)
            phases.optimizer += clock.lap()
            if let sliceSend {
                let n = optimizerSlice.count
                sliceSend.update(from: p.values + lo, count: n)
                comm.labeled("ZeRO parameter allgather") {
                    comm.allgatherv(send: UnsafeBufferPointer(start: sliceSend, count: n), receive: p.valueBuffer,
                                    counts: sliceCounts)
                }
                phases.communication += clock.lap()
            }
        }
        Trace.span("classifier output layer optimizer", "optimizer") {
            model.classifier?.output.applyUpdate(lr: lastClassifierLR, beta1: s.beta1, beta2: s.beta2, eps: s.eps)
        }
        phases.classifierOptimizer += clock.lap()
        if model.classifier != nil {
            for _ in 1..<max(1, s.classifierSteps) { try classifierOnlyStep(batch, epoch: epoch) }
        }
        return stats
    }

    /// torch.nn.utils.clip_grad_norm_: the global ‖g‖₂ over the replicated
    /// gradient (the same on every rank after the reduction) and every rank's
    /// classifier rows; all gradients scaled by min(1, c / (‖g‖ + 10⁻⁶)).
    private func clipGradients(maxNorm: Double) {
        let p = model.parameters
        let shard = model.classifier?.output.store
        let local = shard.map { Kernels.sumOfSquares($0.grads, count: $0.count) } ?? 0
        let norm = (replicatedGradientSquares + comm.sum([local])[0]).squareRoot()
        lastGradNorm = norm
        let scale = maxNorm / (norm + 1e-6)
        guard scale < 1 else { return }
        let c = Float(scale)
        if let sliceGrads {
            for i in 0..<optimizerSlice.count { sliceGrads[i] *= c }
        } else {
            for i in 0..<p.count { p.grads[i] *= c }
        }
        if let shard { for i in 0..<shard.count { shard.grads[i] *= c } }
    }

    /// One classifier-only update (`train.cls_steps` > 1) on the step's batch:
    /// z re-encoded with the updated encoder, the classifier's CE gradient,
    /// reduced over ranks (its hidden layers only), checked, and applied.
    /// (Not with ZeRO: `TrainConfig.validate` refuses that combination.)
    private func classifierOnlyStep(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) throws {
        precondition(sliceGrads == nil, "train.cls_steps > 1 with ZeRO")
        let local = shard(batch)
        model.classifierOnlyPass(x: x, eps: eps, n: local.count, batch: batch, times: &phases)
        var clock = PhaseClock()
        let p = model.parameters, cr = model.classifierParameterRange
        if !cr.isEmpty {
            comm.labeled("classifier gradient allreduce") {
                comm.allreduceSum(UnsafeMutableBufferPointer(rebasing: p.gradBuffer[cr]))
            }
        }
        let total = comm.sum([model.shardGradientCheck()])[0] + Kernels.sum(p.grads + cr.lowerBound, count: cr.count)
        phases.communication += clock.lap()
        if !total.isFinite { throw NonFiniteError(epoch: epoch, step: globalStep, what: "classifier gradient") }
        classifierAdamStep += 1
        optimizer.update(p.values, grads: p.grads, range: cr, optimizer.scalars(step: classifierAdamStep, lr: lastClassifierLR))
        phases.optimizer += clock.lap()
        let s = settings
        model.classifier?.output.applyUpdate(lr: lastClassifierLR, beta1: s.beta1, beta2: s.beta2, eps: s.eps)
        phases.classifierOptimizer += clock.lap()
    }

    /// The replicated parameters' Adam moments, whole (in parameter order):
    /// this rank's own without ZeRO; gathered to `root` with it (nil elsewhere). Collective with ZeRO.
    public func fullMoments(root: Int = 0) -> (m: [Float], v: [Float])? {
        let count = model.parameters.count
        guard reduction.zeroStage == 1 else {
            guard comm.rank == root else { return nil }
            return (Array(UnsafeBufferPointer(start: optimizer.m, count: count)),
                    Array(UnsafeBufferPointer(start: optimizer.v, count: count)))
        }
        var m = [Float](repeating: 0, count: comm.rank == root ? count : 0), v = m
        let n = optimizerSlice.count
        m.withUnsafeMutableBufferPointer {
            comm.gatherv(send: UnsafeBufferPointer(start: optimizer.m, count: n), receive: $0, counts: sliceCounts, root: root)
        }
        v.withUnsafeMutableBufferPointer {
            comm.gatherv(send: UnsafeBufferPointer(start: optimizer.v, count: n), receive: $0, counts: sliceCounts, root: root)
        }
        return comm.rank == root ? (m, v) : nil
    }

    /// Restores Adam from whole moments (a checkpoint): this rank keeps its slice.
    public func restoreOptimizer(step: Int, m: [Float], v: [Float]) {
        let r = optimizerSlice
        m.withUnsafeBufferPointer { mp in
            v.withUnsafeBufferPointer { vp in
                optimizer.restore(step: step, m: mp.baseAddress! + r.lowerBound, v: vp.baseAddress! + r.lowerBound)
            }
        }
    }

    /// Gradient buckets (0: one blocking allreduce or ZeRO's reduce-scatter).
    public var bucketCount: Int { buckets?.ranges.count ?? 0 }

    /// Bytes of the replicated parameters' optimizer state on this rank (Adam's two moments).
    public var optimizerStateBytes: Int { 8 * optimizerSlice.count }

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
        Trace.span("data", "data") {
            feed.fill(x, indices: local, epoch: epoch)
            noise.fill(eps, indices: local, epoch: epoch)
        }
        phases.data += clock.lap()
        let scale = 1 / Float(b)
        var stats = Trace.span("forward", "forward") {
            model.forward(x: x, eps: eps, n: n, batch: batch, gradScale: scale, times: &phases)
        }
        // The model books its own forward, backward, classifier and classifier-collective times.
        _ = clock.lap()
        let f0 = comm.inFlightSeconds
        if let buckets {
            buckets.begin()
            Trace.span("backward", "backward") {
                model.backward(x: x, eps: eps, n: n, gradScale: scale, times: &phases) { layer in
                    buckets.ready(layer, comm: self.comm)
                }
            }
        } else {
            Trace.span("backward", "backward") { model.backward(x: x, eps: eps, n: n, gradScale: scale, times: &phases) }
        }
        // The partitioned rows' gradients are local: their finiteness joins the step's sums.
        var shardSum = model.shardGradientCheck()
        // Buckets started (and polled) during backward: the model's clock booked that as backward.
        let inBackward = buckets?.secondsInBackward ?? 0
        // The model booked its own backward (and classifier) time; take out the bucket starts
        // and polls its clock saw, which are communication.
        _ = clock.lap()
        phases.backward -= inBackward
        phases.gradientExposed += inBackward
        phases.communication += inBackward
        let r0 = comm.seconds
        Trace.span("gradient reduction", "communication") {
            if let buckets {
                buckets.finish(comm: comm)
            } else if let sliceGrads {
                let p = model.parameters
                comm.labeled("ZeRO gradient reduce-scatter") {
                    comm.reduceScatterv(send: UnsafeBufferPointer(p.gradBuffer),
                                        receive: UnsafeMutableBufferPointer(start: sliceGrads, count: optimizerSlice.count),
                                        counts: sliceCounts)
                }
                shardSum += Kernels.sum(sliceGrads, count: optimizerSlice.count)
            } else {
                comm.labeled("gradient allreduce") { comm.allreduceSum(model.parameters.gradBuffer) }
            }
        }
        phases.gradientExposed += comm.seconds - r0
        // Blocking: in flight = exposed; bucketed: each bucket's start to the poll or wait that saw it done.
        phases.gradientInFlight += buckets == nil ? comm.seconds - r0 : comm.inFlightSeconds - f0
        phases.gradientBytes += 4 * model.parameters.count
        var sums = (stats.recon, stats.kl, shardSum, requestStop ? 1.0 : 0, requestCheckpoint ? 1.0 : 0)
        comm.labeled("loss sums and stop/checkpoint flags") {
            withUnsafeMutableBytes(of: &sums) { raw in comm.allreduceSum(raw.bindMemory(to: Double.self)) }
        }
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
