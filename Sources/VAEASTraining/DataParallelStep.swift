import VAEASCore
import VAEASDistributed
import VAEASConfig
import VAEASData

/// One data-parallel optimizer step (design doc, "Data parallelism"), top to
/// bottom in `callAsFunction`: this rank's slice of the global batch → its
/// inputs (binarized x, noise ε, keyed by sample index, never by rank) → the
/// model's forward and backward → the replicated gradients reduced by the
/// run's `GradientReducer` (and the loss sums with the stop/checkpoint flags
/// in one small allreduce) → the collective finite check → the schedule and
/// clipping → the same Adam update on every rank (or its ZeRO slice), and
/// each rank's update of its own classifier rows.
public final class DataParallelStep {
    public let model: VAEASModel
    /// The model's communicator: every collective goes through it, so `Trace` books its time.
    public let comm: TimedCommunicator
    /// The inputs and the forward half (also usable alone: `forward.losses`).
    public let forward: ForwardPass
    public var feed: DataFeed { forward.feed }
    /// Adam over the replicated parameters this rank updates (`reducer.optimizerSlice`).
    public let optimizer: Adam
    public let settings: OptimizerSettings
    /// How the replicated gradients are reduced, chosen once (`train.bucket_mb`, `train.zero_stage`).
    public let reducer: GradientReducer
    public var optimizerSlice: Range<Int> { reducer.optimizerSlice }
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
    /// `train.divergence_factor`: a step whose loss is over the bound throws
    /// `DivergenceError` before its update.
    public var divergence = DivergenceGuard(factor: 0)
    /// The objective of the last step (the mean loss of its batch, before its update).
    public private(set) var lastLoss = Double.nan
    public var requestCheckpoint = false
    public private(set) var agreedStop = false
    public private(set) var agreedCheckpoint = false
    /// Σ g² over the replicated gradient of the last step (the same on every
    /// rank: the gradient is reduced), for the logged gradient norm.
    public private(set) var replicatedGradientSquares = 0.0

    public init(model: VAEASModel, feed: DataFeed, settings: OptimizerSettings,
                reduction: GradientReduction = GradientReduction()) {
        self.model = model
        comm = model.comm
        forward = ForwardPass(model: model, feed: feed)
        self.settings = settings
        reducer = makeGradientReducer(reduction, model: model, comm: model.comm)
        optimizer = Adam(count: reducer.optimizerSlice.count, lr: settings.lr, beta1: settings.beta1,
                         beta2: settings.beta2, eps: settings.eps)
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
                                   localCapacity: localCapacity, trainSet: train, comm: comm)
        model.initialize()
        let feed = DataFeed(dataset: train, binarization: config.data.binarize, seed: spec.seed)
        let step = DataParallelStep(model: model, feed: feed, settings: OptimizerSettings(config.train),
                                    reduction: GradientReduction(config.train))
        step.divergence = DivergenceGuard(factor: config.train.divergenceFactor)
        return step
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
        Trace.begin("step", .step)
        defer { Trace.end(name: "step \(globalStep)") }
        // KL annealing and the schedule are functions of the step about to be taken.
        let t = globalStep + 1
        model.klAnnealFactor = klAnnealFactor(step: t, annealSteps: klAnnealSteps)
        let (stats, shardSum) = computeGradients(batch, epoch: epoch)
        globalStep = t
        // Every rank holds the same reduced sums, so every rank takes these branches together.
        if !(stats.recon + stats.kl + stats.crossEntropy + stats.hHat).isFinite {
            throw NonFiniteError(epoch: epoch, step: globalStep, what: "loss")
        }
        lastLoss = model.objective.value(stats).objective
        try divergence.observe(lastLoss, epoch: epoch, step: globalStep, beforeCheckpoint: false)
        // Σg² is the finite check (a non-finite element makes it inf or NaN)
        // and the replicated part of ‖∇‖² that steps.jsonl reports, in one pass.
        // It stays a pass of its own before Adam: folded into Adam's pass, a
        // non-finite gradient would already have changed the parameters when
        // the step stops.
        replicatedGradientSquares = reducer.sumOfSquares()
        if !(replicatedGradientSquares + shardSum).isFinite {
            throw NonFiniteError(epoch: epoch, step: globalStep, what: "gradient")
        }
        let f = settings.schedule.factor(step: t, totalSteps: totalSteps)
        lastLRFactor = f
        lastLR = settings.lr * f
        lastClassifierLR = settings.classifierLR * f
        lastGradNorm = nil
        if settings.clipGradNorm > 0 { clipGradients(maxNorm: settings.clipGradNorm) }
        applyAdam()
        if model.classifier != nil {
            for _ in 1..<max(1, settings.classifierSteps) { try classifierOnlyStep(batch, epoch: epoch) }
        }
        return stats
    }

    /// Adam on this rank's slice of the replicated parameters, in two groups
    /// (PyTorch's param_groups): the encoder and decoder, and the classifier's
    /// hidden layers with their own rate and step count; then the slices made
    /// whole on every rank, and the classifier's output rows updated by their owner.
    /// The rule is elementwise, so with one rate and one count this is
    /// bit-identical to one update over the whole buffer (or slice).
    private func applyAdam() {
        let p = model.parameters, s = settings
        Trace.span("optimizer", .optimizer, name: "optimizer (Adam, \(optimizerSlice.count) parameters)") {
            optimizer.countStep()
            classifierAdamStep += 1
            let vae = optimizer.scalars(step: optimizer.step, lr: lastLR)
            let cls = optimizer.scalars(step: classifierAdamStep, lr: lastClassifierLR)
            let cr = model.classifierParameterRange
            let lo = optimizerSlice.lowerBound, hi = optimizerSlice.upperBound
            func part(_ r: Range<Int>) -> Range<Int> {
                let a = min(max(r.lowerBound, lo), hi) - lo, b = min(max(r.upperBound, lo), hi) - lo
                return a..<max(a, b)
            }
            let grads = UnsafePointer(reducer.reducedGradients)
            optimizer.update(p.values + lo, grads: grads, range: part(0..<cr.lowerBound), vae)
            optimizer.update(p.values + lo, grads: grads, range: part(cr), cls)
            reducer.gatherParameters()
        }
        Trace.span("classifier output layer optimizer", .classifierOptimizer) {
            model.classifier?.output.applyUpdate(lr: lastClassifierLR, beta1: s.beta1, beta2: s.beta2, eps: s.eps)
        }
    }

    /// ‖∇‖₂ of the step just computed (collective): the replicated gradient,
    /// the same on every rank after the reduction, and the output layer's rows
    /// summed over ranks with each global row counted once.
    public func gradientNorm() -> Double {
        let local = model.classifier?.output.uniqueGradientSquares() ?? 0
        return (replicatedGradientSquares + comm.sum([local])[0]).squareRoot()
    }

    /// torch.nn.utils.clip_grad_norm_: all gradients scaled by
    /// min(1, c / (‖g‖ + 10⁻⁶)), ‖g‖ the global norm (`gradientNorm`).
    private func clipGradients(maxNorm: Double) {
        let shard = model.classifier?.output.store
        let norm = gradientNorm()
        lastGradNorm = norm
        let scale = maxNorm / (norm + 1e-6)
        guard scale < 1 else { return }
        let c = Float(scale)
        reducer.scale(by: c)
        if let shard { for i in 0..<shard.count { shard.grads[i] *= c } }
    }

    /// One classifier-only update (`train.cls_steps` > 1) on the step's batch:
    /// z re-encoded with the updated encoder, the classifier's CE gradient,
    /// reduced over ranks (its hidden layers only), checked, and applied.
    /// (Not with ZeRO: `TrainConfig.validate` refuses that combination.)
    private func classifierOnlyStep(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) throws {
        precondition(!reducer.shardsOptimizerState, "train.cls_steps > 1 with ZeRO")
        let local = forward.shard(batch)
        model.classifierOnlyPass(x: forward.x, eps: forward.eps, n: local.count, batch: batch)
        let p = model.parameters, cr = model.classifierParameterRange
        let total = Trace.span("classifier gradient allreduce", .gradientCommunication) {
            if !cr.isEmpty { comm.allreduceSum(UnsafeMutableBufferPointer(rebasing: p.gradBuffer[cr])) }
            return comm.sum([model.shardGradientCheck()])[0] + Kernels.sum(p.grads + cr.lowerBound, count: cr.count)
        }
        if !total.isFinite { throw NonFiniteError(epoch: epoch, step: globalStep, what: "classifier gradient") }
        classifierAdamStep += 1
        Trace.span("optimizer", .optimizer) {
            optimizer.update(p.values, grads: p.grads, range: cr, optimizer.scalars(step: classifierAdamStep, lr: lastClassifierLR))
        }
        let s = settings
        Trace.span("classifier output layer optimizer", .classifierOptimizer) {
            model.classifier?.output.applyUpdate(lr: lastClassifierLR, beta1: s.beta1, beta2: s.beta2, eps: s.eps)
        }
    }

    /// Forward and backward on the global batch, gradients reduced over ranks:
    /// the reducer holds ∂L_φθ/∂(φ, θ) for the encoder and decoder and
    /// ∂(mean CE)/∂ω for the classifier's hidden layers (`model.parameters.grads`
    /// whole, or this rank's ZeRO slice); the partitioned rows' gradients are in
    /// the classifier's own store. Also returns the sum of the gradients the
    /// reducer does not check itself, reduced (NaN if any rank has a non-finite one).
    public func computeGradients(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> (StepStats, Double) {
        let b = batch.count
        let local = forward.shard(batch)
        let n = local.count
        let x = forward.x, eps = forward.eps
        model.zeroGrads()
        // Every rank runs every call below, even with n = 0 (a short last batch
        // over many ranks): the classifier's collectives need all of them.
        Trace.span("data", .data) { forward.fill(local, epoch: epoch) }
        let scale = 1 / Float(b)
        // The model's spans book the classifier's compute and collectives apart from the VAE's.
        var stats = Trace.span("forward", .forward) {
            model.forward(x: x, eps: eps, n: n, batch: batch, gradScale: scale)
        }
        reducer.beginBackward()
        Trace.span("backward", .backward) {
            model.backward(x: x, eps: eps, n: n, gradScale: scale, layerDone: reducer.layerHook)
        }
        // The partitioned rows' gradients are local: their finiteness joins the step's sums.
        var shardSum = model.shardGradientCheck()
        shardSum += reducer.reduce()
        var sums = (stats.recon, stats.kl, shardSum, requestStop ? 1.0 : 0, requestCheckpoint ? 1.0 : 0)
        Trace.span("loss sums and stop/checkpoint flags", .communication) {
            withUnsafeMutableBytes(of: &sums) { raw in comm.allreduceSum(raw.bindMemory(to: Double.self)) }
        }
        stats.recon = sums.0
        stats.kl = sums.1
        stats.count = b
        agreedStop = sums.3 > 0
        agreedCheckpoint = sums.4 > 0
        return (stats, sums.2)
    }

    /// L_φθ and the classifier's mean CE on `batch`, forward only (`ForwardPass.losses`).
    public func losses(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> (objective: Double, classifierCE: Double) {
        forward.losses(batch, epoch: epoch)
    }
}
