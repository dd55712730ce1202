import Foundation
import Logging
import VAEASConfig
import VAEASData

/// Sums of per-sample terms over the global batch (identical on every rank).
public struct StepStats: Sendable {
    public var recon: Double = 0
    public var kl: Double = 0
    public var count: Int = 0
    public var loss: Double { recon + kl }
}

/// Accumulated seconds per phase of the training step on this rank.
public struct PhaseTimes: Sendable {
    public var data = 0.0, forward = 0.0, backward = 0.0, communication = 0.0, optimizer = 0.0
    public init() {}
    public var all: [(String, Double)] {
        [("data", data), ("forward", forward), ("backward", backward), ("communication", communication), ("optimizer", optimizer)]
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
    public let vae: VAE
    public let adam: Adam
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
        self.comm = comm
        self.output = output
        let m = config.model, t = config.train
        guard let act = Activation(rawValue: m.activation) else {
            throw ConfigError(key: "model.activation", source: nil, line: nil, message: "unknown activation \(m.activation)")
        }
        guard let bin = Binarization(rawValue: config.data.binarize) else {
            throw ConfigError(key: "data.binarize", source: nil, line: nil, message: "unknown binarization \(config.data.binarize)")
        }
        guard config.objective.kind == "vae" else {
            throw ConfigError(key: "objective.kind", source: nil, line: nil,
                              message: "'\(config.objective.kind)' is not implemented by this build; use 'vae'")
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
        let evalRows = test.map { min(config.eval.batch, BlockPartition(total: $0.count, parts: comm.size).maxCount) } ?? 1
        let capacity = max(localBatch, evalRows)
        self.capacity = capacity
        vae = VAE(shape: shape, capacity: capacity, samples: t.samples)
        guard let scheme = Initialization(rawValue: m.initialization) else {
            throw ConfigError(key: "model.init", source: nil, line: nil, message: "unknown initialisation \(m.initialization)")
        }
        vae.initialize(seed: seed, scheme: scheme)
        // Initialisation is deterministic everywhere; the broadcast makes the
        // replicas identical by construction, as DDP does at wrap time.
        comm.broadcast(UnsafeMutableRawBufferPointer(vae.store.valueBuffer), root: 0)
        adam = Adam(count: vae.store.count, lr: Float(t.lr), beta1: Float(t.beta1), beta2: Float(t.beta2), eps: Float(t.eps))
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
        let b = batch.count
        let mine = BlockPartition(total: b, parts: comm.size).range(comm.rank)
        let local = UnsafeBufferPointer(rebasing: batch[mine])
        let n = local.count
        var clock = PhaseClock()
        vae.store.zeroGrads()
        var recon = 0.0, kl = 0.0
        if n > 0 {
            trainFeed.fill(x, indices: local, epoch: epoch)
            noise.fill(vae.eps, indices: local, epoch: epoch)
            phaseSeconds.data += clock.lap()
            let scale = 1 / Float(b)
            vae.encode(x, n: n)
            vae.reparameterize(n: n, samples: samples)
            vae.decode(rows: n * samples)
            vae.reconstruction(x, n: n, samples: samples, gradScale: scale)
            phaseSeconds.forward += clock.lap()
            vae.backward(x, n: n, samples: samples, gradScale: scale)
            for i in 0..<n { recon += vae.recon[i]; kl += vae.kl[i] }
            phaseSeconds.backward += clock.lap()
        }
        comm.allreduceSum(vae.store.gradBuffer)
        var sums = (recon, kl)
        withUnsafeMutableBytes(of: &sums) { raw in
            comm.allreduceSum(raw.bindMemory(to: Double.self))
        }
        phaseSeconds.communication += clock.lap()
        globalStep += 1
        let stats = StepStats(recon: sums.0, kl: sums.1, count: b)
        if !stats.loss.isFinite { throw NonFiniteError(epoch: epoch, step: globalStep, what: "loss") }
        // The reduced gradient is the same on every rank, so every rank takes this branch together.
        if !Kernels.sum(vae.store.grads, count: vae.store.count).isFinite {
            throw NonFiniteError(epoch: epoch, step: globalStep, what: "gradient")
        }
        adam.update(vae.store.values, grads: vae.store.grads)
        phaseSeconds.optimizer += clock.lap()
        return stats
    }

    /// Mean recon and KL over `feed` (single reparameterisation sample, fixed
    /// noise), sharded over ranks and reduced: −ELBO = recon + KL.
    public func evaluate(_ feed: DataFeed) -> (recon: Double, kl: Double) {
        let part = BlockPartition(total: feed.count, parts: comm.size).range(comm.rank)
        var recon = 0.0, kl = 0.0
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
                vae.reparameterize(n: n, samples: 1)
                vae.decode(rows: n)
                vae.reconstruction(x, n: n, samples: 1, gradScale: nil)
                for i in 0..<n { recon += vae.recon[i]; kl += vae.kl[i] }
                lo = hi
            }
        }
        let s = comm.sum([recon, kl])
        return (s[0] / Double(feed.count), s[1] / Double(feed.count))
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
            var stepsDone = 0
            try perm.withUnsafeBufferPointer { p in
                for s in 0..<stepsPerEpoch {
                    let range = (s * t.batch)..<min((s + 1) * t.batch, p.count)
                    let st = try step(UnsafeBufferPointer(rebasing: p[range]), epoch: epoch)
                    total.recon += st.recon; total.kl += st.kl; total.count += st.count
                    stepsDone += 1
                    if t.logEvery > 0 && globalStep % t.logEvery == 0 {
                        var r = JSONRecord()
                        r.set("step", globalStep); r.set("epoch", epoch)
                        r.set("loss", st.loss / Double(st.count)); r.set("recon", st.recon / Double(st.count))
                        r.set("kl", st.kl / Double(st.count)); r.set("batch", st.count)
                        _ = try comm.rootOnly { try output?.appendStep(r) }
                    }
                    progress?.step(epoch: epoch, step: s + 1, of: stepsPerEpoch, samples: total.count,
                                   loss: total.loss / Double(total.count), since: epochStart)
                    if maxSteps > 0 && globalStep >= maxSteps { stop = true; break }
                }
            }
            let trainSeconds = Date().timeIntervalSince(epochStart)
            var record = JSONRecord()
            record.set("epoch", epoch)
            record.set("step", globalStep)
            record.set("ranks", comm.size)
            record.set("loss", total.loss / Double(total.count))
            record.set("recon", total.recon / Double(total.count))
            record.set("kl", total.kl / Double(total.count))
            let evalDue = config.eval.every > 0 && (epoch % config.eval.every == 0 || stop || epoch == t.epochs)
            var evalSeconds = 0.0
            if evalDue, let testFeed {
                let e0 = Date()
                let ev = evaluate(testFeed)
                evalSeconds = Date().timeIntervalSince(e0)
                record.set("test_elbo", -(ev.recon + ev.kl))
                record.set("test_recon", ev.recon)
                record.set("test_kl", ev.kl)
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
            _ = try comm.rootOnly {
                try output?.appendMetrics(record)
                if checkpointDue, let output { try Checkpoint.save(vae, objective: config.objective.kind, to: output.checkpointPath) }
            }
            progress?.epochDone(record, epochs: t.epochs)
        }
    }
}
