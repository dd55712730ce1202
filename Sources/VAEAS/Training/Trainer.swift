import Foundation
import SafeTensors
import Logging
import VAEASConfig
import VAEASData

/// Sums of per-sample terms over the global batch (identical on every rank).
public struct StepStats: Sendable {
    public var recon: Double = 0
    public var kl: Double = 0
    public var count: Int = 0
    /// VAE-AS: Σ CE and Σ Ĥ over the classifier's global rows (B·L per step).
    public var crossEntropy: Double = 0
    public var hHat: Double = 0
    public var rows: Int = 0

    public mutating func add(_ o: StepStats) {
        recon += o.recon; kl += o.kl; count += o.count
        crossEntropy += o.crossEntropy; hHat += o.hHat; rows += o.rows
    }
}

/// The objective's weights (design doc, "Objective"): encoder and decoder
/// minimise recon + α·Î + β·MD̂ = recon + β·KL + (α − β)·Î.
public struct ObjectiveWeights: Sendable {
    public let alpha: Double
    public let beta: Double
    /// log V when a classifier is present.
    public let logLabels: Double?

    /// Epoch or step means of the reported terms.
    public func summary(_ s: StepStats) -> [(String, Double)] {
        let recon = s.recon / Double(s.count), kl = s.kl / Double(s.count)
        guard let logV = logLabels, s.rows > 0 else { return [("loss", recon + kl), ("recon", recon), ("kl", kl)] }
        let mi = logV - s.hHat / Double(s.rows)
        let md = kl - mi
        return [("loss", recon + alpha * mi + beta * md), ("recon", recon), ("kl", kl),
                ("mi", mi), ("md", md), ("sc", s.crossEntropy / Double(s.rows))]
    }
}

/// Accumulated seconds per phase of the training step on this rank.
public struct PhaseTimes: Sendable {
    /// `forward`/`backward`: encoder and decoder; `classifier`: the VAE-AS
    /// classifier's compute (hidden layers and the partitioned output layer);
    /// `communication`: every collective, the classifier's included.
    public var data = 0.0, forward = 0.0, backward = 0.0, classifier = 0.0, communication = 0.0, optimizer = 0.0
    /// The part of `communication` spent in the classifier's collectives.
    public var classifierCommunication = 0.0
    /// The output layer's optimizer update (dense Adam for the full softmax, sparse for the tree).
    public var classifierOptimizer = 0.0
    public init() {}
    public var all: [(String, Double)] {
        [("data", data), ("forward", forward), ("backward", backward), ("classifier", classifier),
         ("communication", communication), ("optimizer", optimizer), ("classifier_optimizer", classifierOptimizer)]
    }
}

struct PhaseClock {
    var last = DispatchTime.now().uptimeNanoseconds
    mutating func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) * 1e-9
    }
}

/// A run stopped because a loss or gradient was NaN or infinite. The
/// parameters were not updated with it; the last checkpoint stays as it was.
public struct NonFiniteError: Error, CustomStringConvertible {
    public let epoch: Int
    public let step: Int
    public let what: String
    public var description: String {
        "non-finite \(what) at epoch \(epoch), step \(step): training stopped before applying it; "
            + "model.safetensors, if written, holds the last completed checkpoint (try a lower train.lr)"
    }
}

public struct ReplicaDivergenceError: Error, CustomStringConvertible {
    public let epoch: Int
    public var description: String { "replicated parameters differ between ranks after epoch \(epoch)" }
}

/// Data-parallel training of the VAE (design doc, "Data parallelism").
///
/// Each step takes the next B indices of the epoch's permutation; rank r
/// computes the per-sample terms of its contiguous slice, gradients of the
/// mean loss are summed with one allreduce of the fused gradient buffer, and
/// every rank applies the same Adam update.
public final class Trainer {
    public let config: TrainConfig
    public let comm: Communicator
    let timedComm: TimedCommunicator
    var commSeconds: Double { timedComm.seconds }
    public let vae: VAE
    public let adam: Adam
    /// VAE-AS only: the classifier, its labels and the optimizer of the partitioned rows.
    public let classifier: AuxiliaryClassifier?
    public let labels: LabelAssignment?
    public let weights: ObjectiveWeights
    let estimator: MIEstimator
    public let trainFeed: DataFeed
    public let testFeed: DataFeed?
    public let output: RunOutput?
    public var logger = Logger(label: "vaeas.train")
    public var progress: Progress?

    let noise: NoiseSource
    let evalNoise: NoiseSource
    let permutationRNG: Philox
    let seed: UInt32
    let samples: Int
    /// Input rows (capacity × input dimension).
    let x: UnsafeMutablePointer<Float>
    let capacity: Int
    let evalIndices: [Int32]
    public private(set) var globalStep = 0
    /// Seconds spent per phase of `step` (this rank), for `bench`.
    public var phaseSeconds = PhaseTimes()
    public private(set) var history: [JSONRecord] = []

    public init(config: TrainConfig, train: Dataset, test: Dataset?, comm: Communicator, output: RunOutput?) throws {
        self.config = config
        let timed = TimedCommunicator(comm)
        self.timedComm = timed
        self.comm = timed
        self.output = output
        let m = config.model, t = config.train
        guard let act = Activation(rawValue: m.activation) else {
            throw ConfigError(key: "model.activation", source: nil, line: nil, message: "unknown activation \(m.activation)")
        }
        guard let bin = Binarization(rawValue: config.data.binarize) else {
            throw ConfigError(key: "data.binarize", source: nil, line: nil, message: "unknown binarization \(config.data.binarize)")
        }
        let o = config.objective
        guard let estimator = MIEstimator(rawValue: o.miEstimator) else {
            throw ConfigError(key: "objective.mi_estimator", source: nil, line: nil, message: "unknown estimator \(o.miEstimator)")
        }
        self.estimator = estimator
        let isVAEAS = o.kind == "vaeas"
        let tree = o.softmax == "tree"
        if isVAEAS && tree && estimator == .entropy {
            throw ConfigError(key: "objective.mi_estimator", source: nil, line: nil,
                              message: "'entropy' needs all V probabilities, which objective.softmax=tree does not compute; use 'ce' or 'fano'")
        }
        if let test, test.dimension != train.dimension {
            throw ConfigError(key: "data.test_split", source: nil, line: nil,
                              message: "test images have \(test.dimension) pixels, training images \(train.dimension)")
        }
        guard train.count >= 1 else {
            throw ConfigError(key: "data.limit", source: nil, line: nil, message: "the training set is empty")
        }
        let seed = UInt32(t.seed)
        self.seed = seed
        samples = t.samples
        let shape = VAEShape(input: train.dimension, latent: m.latent, hidden: m.hidden,
                             encoderLayers: m.encLayers, decoderLayers: m.decLayers, activation: act)
        let localBatch = BlockPartition(total: t.batch, parts: comm.size).maxCount
        let labelCount = o.labels > 0 ? o.labels : train.count
        let evalRows = test.map { min(config.eval.batch, BlockPartition(total: $0.count, parts: comm.size).maxCount) } ?? 1
        let capacity = max(localBatch, evalRows)
        self.capacity = capacity
        guard let scheme = Initialization(rawValue: m.initialization) else {
            throw ConfigError(key: "model.init", source: nil, line: nil, message: "unknown initialisation \(m.initialization)")
        }
        let store = ParameterStore()
        vae = VAE(shape: shape, capacity: capacity, samples: t.samples, store: store)
        if isVAEAS {
            guard labelCount >= 2 else {
                throw ConfigError(key: "objective.labels", source: nil, line: nil, message: "VAE-AS needs at least 2 labels, got \(labelCount)")
            }
            guard let kind = LabelAssignment.Kind(rawValue: o.labelAssignment) else {
                throw ConfigError(key: "objective.label_assignment", source: nil, line: nil, message: "unknown assignment \(o.labelAssignment)")
            }
            classifier = AuxiliaryClassifier(latent: m.latent, hidden: m.hidden, layers: m.clsLayers, activation: act,
                                             labels: labelCount, localRowCapacity: localBatch * t.samples,
                                             globalRowCapacity: t.batch * t.samples, comm: comm, store: store,
                                             tree: tree)
            labels = LabelAssignment(samples: train.count, labels: labelCount, kind: kind, seed: seed,
                                     pcaLeavesFrom: tree && o.leafOrder == "pca" ? train : nil)
        } else {
            classifier = nil
            labels = nil
        }
        store.allocate()
        vae.initialize(seed: seed, scheme: scheme)
        classifier?.initialize(store.values, seed: seed, scheme: scheme)
        // Initialisation is deterministic everywhere; the broadcast makes the
        // replicas identical by construction, as DDP does at wrap time. The
        // partitioned rows are each rank's own and are not broadcast.
        comm.broadcast(UnsafeMutableRawBufferPointer(store.valueBuffer), root: 0)
        adam = Adam(count: store.count, lr: Float(t.lr), beta1: Float(t.beta1), beta2: Float(t.beta2), eps: Float(t.eps))
        weights = isVAEAS ? ObjectiveWeights(alpha: o.alpha, beta: o.beta, logLabels: log(Double(labelCount)))
                          : ObjectiveWeights(alpha: 1, beta: 1, logLabels: nil)
        trainFeed = DataFeed(dataset: train, binarization: bin, seed: seed)
        testFeed = test.map { DataFeed(dataset: $0, binarization: bin, seed: seed, evaluation: true) }
        noise = NoiseSource(seed: seed, latent: m.latent, samples: t.samples)
        evalNoise = NoiseSource(seed: seed, latent: m.latent, samples: 1, purpose: .evaluationNoise)
        permutationRNG = Philox(seed: seed, purpose: .permutation)
        x = .allocate(capacity: capacity * train.dimension)
        evalIndices = (0..<Int32(test?.count ?? 0)).map { $0 }
    }

    deinit { x.deallocate() }

    public var stepsPerEpoch: Int { (trainFeed.count + config.train.batch - 1) / config.train.batch }

    /// The epoch's order of sample indices: the same on every rank.
    public func permutation(epoch: Int) -> [Int32] {
        permutationRNG.permutation(trainFeed.count, stream: UInt32(truncatingIfNeeded: epoch))
    }

    /// One optimizer step on the global batch `batch` (global sample indices).
    @discardableResult
    public func step(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) throws -> StepStats {
        let (stats, shardSum) = accumulateGradients(batch, epoch: epoch)
        var clock = PhaseClock()
        globalStep += 1
        if !(stats.recon + stats.kl + stats.crossEntropy + stats.hHat).isFinite {
            throw NonFiniteError(epoch: epoch, step: globalStep, what: "loss")
        }
        // The reduced gradient is the same on every rank, so every rank takes this branch together.
        if !(Kernels.sum(vae.store.grads, count: vae.store.count) + shardSum).isFinite {
            throw NonFiniteError(epoch: epoch, step: globalStep, what: "gradient")
        }
        adam.update(vae.store.values, grads: vae.store.grads)
        phaseSeconds.optimizer += clock.lap()
        let t = config.train
        classifier?.softmax.applyUpdate(lr: Float(t.lr), beta1: Float(t.beta1), beta2: Float(t.beta2), eps: Float(t.eps))
        phaseSeconds.classifierOptimizer += clock.lap()
        return stats
    }

    /// Forward and backward on the global batch, gradients reduced over ranks:
    /// `vae.store.grads` holds ∂L_φθ/∂(φ, θ) for the encoder and decoder and
    /// ∂(mean CE)/∂ω for the classifier's hidden layers; the partitioned rows'
    /// gradients are in the classifier's own store. Also returns the sum of
    /// those local gradients, reduced (NaN if any rank has a non-finite one).
    public func accumulateGradients(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> (StepStats, Double) {
        let b = batch.count
        let mine = BlockPartition(total: b, parts: comm.size).range(comm.rank)
        let local = UnsafeBufferPointer(rebasing: batch[mine])
        let n = local.count, L = samples
        var clock = PhaseClock()
        vae.store.zeroGrads()
        // Every rank runs every call below, even with n = 0 (a short last batch
        // over many ranks): the classifier's collectives need all of them.
        trainFeed.fill(x, indices: local, epoch: epoch)
        noise.fill(vae.eps, indices: local, epoch: epoch)
        phaseSeconds.data += clock.lap()
        let scale = 1 / Float(b)
        let params = UnsafePointer(vae.store.values)
        vae.encode(x, n: n)
        vae.reparameterize(n: n, samples: L)
        phaseSeconds.forward += clock.lap()
        var stats = StepStats()
        var extraDz: UnsafePointer<Float>? = nil
        if let classifier, let labels {
            let sm = classifier.softmax
            sm.zeroGrads()
            let rows = b * L
            for pos in 0..<b {
                let e = labels.label(of: batch[pos])
                for l in 0..<L { sm.targets[pos * L + l] = e }
            }
            let layout = sm.layout(batch: b, samples: L)
            let c0 = commSeconds
            classifier.forward(z: vae.z, localRows: n * L, rows: rows, layout: layout, params: params)
            // Encoder/decoder see +(α − β)·Î = −(α − β)·mean Ĥ (+ log V); the classifier its mean CE.
            let miScale = Float(-(weights.alpha - weights.beta)) / Float(rows)
            if classifier.backward(z: vae.z, localRows: n * L, ceScale: 1 / Float(rows), miScale: miScale,
                                   estimator: estimator, layout: layout, params: params, grads: vae.store.grads) {
                extraDz = UnsafePointer(classifier.dz)
            }
            for r in 0..<rows { stats.crossEntropy += sm.crossEntropy[r]; stats.hHat += sm.hHat(r, estimator) }
            stats.rows = rows
            let classifierComm = commSeconds - c0
            phaseSeconds.classifier += clock.lap() - classifierComm
            phaseSeconds.communication += classifierComm
            phaseSeconds.classifierCommunication += classifierComm
        }
        vae.decode(rows: n * L)
        vae.reconstruction(x, n: n, samples: L, gradScale: scale)
        phaseSeconds.forward += clock.lap()
        vae.backward(x, n: n, samples: L, gradScale: scale, klWeight: Float(weights.beta), extraDz: extraDz)
        var recon = 0.0, kl = 0.0
        for i in 0..<n { recon += vae.recon[i]; kl += vae.kl[i] }
        // The partitioned rows' gradients are local: their finiteness joins the step's sums.
        let shardSum = classifier?.softmax.gradientSum() ?? 0
        phaseSeconds.backward += clock.lap()
        comm.allreduceSum(vae.store.gradBuffer)
        var sums = (recon, kl, shardSum)
        withUnsafeMutableBytes(of: &sums) { raw in
            comm.allreduceSum(raw.bindMemory(to: Double.self))
        }
        phaseSeconds.communication += clock.lap()
        stats.recon = sums.0
        stats.kl = sums.1
        stats.count = b
        return (stats, sums.2)
    }

    /// Forward-only sums over `batch` (recon, KL, and the classifier's CE and Ĥ), reduced over ranks.
    public func forwardStats(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> StepStats {
        var stats = StepStats()
        _ = losses(batch, epoch: epoch, stats: &stats)
        return stats
    }

    /// Recon, KL, MI, MD and SC over the whole training set in order, forward
    /// only, in batches of `train.batch` (the classifier's estimates as
    /// `metrics.jsonl` reports them, but for fixed parameters).
    public func trainingSetSummary() -> [(String, Double)] {
        let n = trainFeed.count, b = config.train.batch
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
        return weights.summary(total)
    }

    /// The two objectives on `batch`, forward only, reduced over ranks:
    /// L_φθ = mean(recon + β·KL) + (α − β)·Î (for `vae`, the negative ELBO) and
    /// the classifier's mean CE (0 without a classifier). The same noise and
    /// binarization as `accumulateGradients` for the same (batch, epoch): what
    /// finite differences of the gradients are taken against.
    public func losses(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> (objective: Double, classifierCE: Double) {
        var stats = StepStats()
        return losses(batch, epoch: epoch, stats: &stats)
    }

    func losses(_ batch: UnsafeBufferPointer<Int32>, epoch: Int, stats: inout StepStats) -> (objective: Double, classifierCE: Double) {
        let b = batch.count, L = samples
        let mine = BlockPartition(total: b, parts: comm.size).range(comm.rank)
        let local = UnsafeBufferPointer(rebasing: batch[mine])
        let n = local.count
        trainFeed.fill(x, indices: local, epoch: epoch)
        noise.fill(vae.eps, indices: local, epoch: epoch)
        vae.encode(x, n: n)
        vae.reparameterize(n: n, samples: L)
        stats = StepStats()
        if let classifier, let labels {
            let sm = classifier.softmax
            let rows = b * L
            for pos in 0..<b {
                let e = labels.label(of: batch[pos])
                for l in 0..<L { sm.targets[pos * L + l] = e }
            }
            classifier.forward(z: vae.z, localRows: n * L, rows: rows, layout: sm.layout(batch: b, samples: L),
                               params: UnsafePointer(vae.store.values))
            for r in 0..<rows { stats.crossEntropy += sm.crossEntropy[r]; stats.hHat += sm.hHat(r, estimator) }
            stats.rows = rows
        }
        vae.decode(rows: n * L)
        vae.reconstruction(x, n: n, samples: L, gradScale: nil)
        var recon = 0.0, kl = 0.0
        for i in 0..<n { recon += vae.recon[i]; kl += vae.kl[i] }
        let s = comm.sum([recon, kl])
        stats.recon = s[0]; stats.kl = s[1]; stats.count = b
        var objective = (stats.recon + weights.beta * stats.kl) / Double(b)
        if let logV = weights.logLabels, stats.rows > 0 {
            objective += (weights.alpha - weights.beta) * (logV - stats.hHat / Double(stats.rows))
        }
        return (objective, stats.rows > 0 ? stats.crossEntropy / Double(stats.rows) : 0)
    }

    /// Mean recon and KL over `feed` (single reparameterisation sample, fixed
    /// noise), sharded over ranks and reduced: −ELBO = recon + KL; and the
    /// active units, dims with Var_x(μ_d(x)) ≥ `eval.au_threshold`.
    public func evaluate(_ feed: DataFeed) -> (recon: Double, kl: Double, activeUnits: Int) {
        let part = BlockPartition(total: feed.count, parts: comm.size).range(comm.rank)
        let d = vae.shape.latent
        var recon = 0.0, kl = 0.0
        var moments = [Double](repeating: 0, count: 2 * d)
        let chunk = max(1, min(capacity, config.eval.batch))
        evalIndices.withUnsafeBufferPointer { all in
            var lo = part.lowerBound
            while lo < part.upperBound {
                let hi = min(lo + chunk, part.upperBound)
                let idx = UnsafeBufferPointer(rebasing: all[lo..<hi])
                let n = idx.count
                feed.fill(x, indices: idx, epoch: 0)
                evalNoise.fill(vae.eps, indices: idx, epoch: 0)
                vae.encode(x, n: n)
                for i in 0..<(n * d) {
                    let m = Double(vae.mu[i])
                    moments[i % d] += m
                    moments[d + i % d] += m * m
                }
                vae.reparameterize(n: n, samples: 1)
                vae.decode(rows: n)
                vae.reconstruction(x, n: n, samples: 1, gradScale: nil)
                for i in 0..<n { recon += vae.recon[i]; kl += vae.kl[i] }
                lo = hi
            }
        }
        let s = comm.sum([recon, kl] + moments)
        let count = Double(feed.count)
        let au = (0..<d).filter { j in s[2 + d + j] / count - (s[2 + j] / count) * (s[2 + j] / count) >= config.eval.auThreshold }.count
        return (s[0] / count, s[1] / count, au)
    }

    /// FNV-1a of the parameter bytes, as two exact 32-bit halves; equal max and
    /// min over ranks means bit-identical replicas.
    public func replicasIdentical() -> Bool {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        UnsafeRawBufferPointer(vae.store.valueBuffer).forEach { h = (h ^ UInt64($0)) &* 0x100_0000_01b3 }
        let parts = [Double(h >> 32), Double(h & 0xFFFF_FFFF)]
        let hi = comm.max(parts)
        let lo = comm.max(parts.map { -$0 })
        return hi[0] == -lo[0] && hi[1] == -lo[1]
    }

    /// Sum of all parameters (Double): comparable across rank counts up to rounding.
    public var parameterSum: Double { Kernels.sum(vae.store.values, count: vae.store.count) }

    /// The checkpoint's tensors on rank 0 (nil elsewhere): the replicated
    /// store, and for VAE-AS the output layer gathered from every rank in label
    /// order (`classifier.out.weight` [V, h], `classifier.out.bias` [V]). Only
    /// rank 0 holds all V rows, and only while writing. Collective.
    public func checkpointWriter() throws -> SafeTensorsWriter? {
        var meta = Checkpoint.metadata(vae.shape, objective: config.objective.kind)
        meta["init"] = config.model.initialization
        meta["dataset"] = config.data.name
        meta["binarize"] = config.data.binarize
        meta["seed"] = "\(config.train.seed)"
        meta["train_samples"] = "\(trainFeed.count)"
        var gathered: [(name: String, shape: [Int], data: [Float])]? = nil
        if let classifier {
            let o = config.objective
            meta["cls_layers"] = "\(config.model.clsLayers)"
            meta["labels"] = "\(classifier.softmax.labels)"
            meta["label_assignment"] = o.labelAssignment
            meta["mi_estimator"] = o.miEstimator
            meta["softmax"] = o.softmax
            meta["leaf_order"] = o.leafOrder
            if o.softmax == "tree" {
                meta["tree_node_order"] = "preorder; node over leaves [lo, hi) splits at lo + ceil((hi - lo) / 2); P(left) = sigmoid(w.h + b)"
            }
            meta["alpha"] = "\(o.alpha)"
            meta["beta"] = "\(o.beta)"
            gathered = classifier.softmax.gatheredTensors()
        }
        guard comm.isRoot else { return nil }
        var writer = try Checkpoint.writer(for: vae.store, metadata: meta)
        for t in gathered ?? [] { try writer.add(t.name, shape: t.shape, data: t.data) }
        return writer
    }

    /// The whole run: epochs of steps, evaluation, metrics and checkpoints.
    public func run() throws {
        let t = config.train
        let runStart = Date()
        let maxSteps = t.maxSteps
        var stop = false
        logger.info("training \(trainFeed.count) samples on \(comm.size) rank(s), global batch \(t.batch), \(stepsPerEpoch) steps/epoch, \(vae.store.count) parameters")
        for epoch in 1...t.epochs where !stop {
            let epochStart = Date()
            let perm = permutation(epoch: epoch)
            var total = StepStats()
            try perm.withUnsafeBufferPointer { p in
                for s in 0..<stepsPerEpoch {
                    let range = (s * t.batch)..<min((s + 1) * t.batch, p.count)
                    let st = try step(UnsafeBufferPointer(rebasing: p[range]), epoch: epoch)
                    total.add(st)
                    if t.logEvery > 0 && globalStep % t.logEvery == 0 {
                        var r = JSONRecord()
                        r.set("step", globalStep); r.set("epoch", epoch)
                        for (k, v) in weights.summary(st) { r.set(k, v) }
                        r.set("batch", st.count)
                        _ = try comm.rootOnly { try output?.appendStep(r) }
                    }
                    progress?.step(epoch: epoch, step: s + 1, of: stepsPerEpoch, samples: total.count,
                                   loss: weights.summary(total)[0].1, since: epochStart)
                    if maxSteps > 0 && globalStep >= maxSteps { stop = true; break }
                }
            }
            let trainSeconds = Date().timeIntervalSince(epochStart)
            var record = JSONRecord()
            record.set("epoch", epoch)
            record.set("step", globalStep)
            record.set("ranks", comm.size)
            for (k, v) in weights.summary(total) { record.set(k, v) }
            if let classifier { record.set("labels", classifier.softmax.labels) }
            let evalDue = config.eval.every > 0 && (epoch % config.eval.every == 0 || stop || epoch == t.epochs)
            var evalSeconds = 0.0
            if evalDue, let testFeed {
                let e0 = Date()
                let ev = evaluate(testFeed)
                record.set("test_elbo", -(ev.recon + ev.kl))
                record.set("test_recon", ev.recon)
                record.set("test_kl", ev.kl)
                record.set("test_au", ev.activeUnits)
                if config.eval.iwSamples > 0 {
                    let r = Evaluator.likelihood(parameters: vae.store, shape: vae.shape, feed: testFeed, comm: comm,
                                                 iwSamples: config.eval.iwSamples, seed: seed,
                                                 auThreshold: config.eval.auThreshold)
                    record.set("test_nll", r.nll)
                    record.set("iw_samples", r.iwSamples)
                }
                evalSeconds = Date().timeIntervalSince(e0)
            }
            guard replicasIdentical() else { throw ReplicaDivergenceError(epoch: epoch) }
            record.set("replicas_identical", true)
            record.set("param_sum", parameterSum)
            record.set("samples", total.count)
            record.set("samples_per_s", Double(total.count) / trainSeconds)
            record.set("seconds", trainSeconds)
            record.set("eval_seconds", evalSeconds)
            record.set("elapsed", Date().timeIntervalSince(runStart))
            history.append(record)
            let last = stop || epoch == t.epochs
            let checkpointDue = last || (t.checkpointEvery > 0 && epoch % t.checkpointEvery == 0)
            // Gathering the partitioned rows is collective; only rank 0 writes.
            let writer = checkpointDue && (output != nil || comm.size > 1) ? try checkpointWriter() : nil
            _ = try comm.rootOnly {
                try output?.appendMetrics(record)
                if let writer, let output { try writer.write(to: output.checkpointPath) }
            }
            progress?.epochDone(record, epochs: t.epochs)
        }
    }
}
