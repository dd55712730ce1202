import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import Foundation
import Logging
import VAEASConfig
import VAEASData

/// The run (design doc, "Outputs"): epochs of `DataParallelStep`s, the test
/// evaluation every `eval.every` epochs, the replica check, `metrics.jsonl`
/// and `steps.jsonl`, checkpoints and progress. Rank 0 writes; the other
/// ranks take part in every collective.
public final class TrainingLoop {
    public let config: TrainConfig
    public let step: DataParallelStep
    public let testFeed: DataFeed?
    public let output: RunOutput?
    public var logger = Logger(label: "vaeas.train")
    public var progress: Progress?
    /// One record per epoch, as written to `metrics.jsonl`.
    public private(set) var history: [JSONRecord] = []
    /// What the checkpoint's metadata says about this run.
    public let metadata: CheckpointMetadata

    public init(config: TrainConfig, step: DataParallelStep, test: Dataset?, output: RunOutput?) throws {
        if let test, test.dimension != step.feed.dimension {
            throw ConfigError(key: "data.test_split", source: nil,
                              message: "test images have \(test.dimension) pixels, training images \(step.feed.dimension)")
        }
        self.config = config
        self.step = step
        self.output = output
        testFeed = test.map { DataFeed(dataset: $0, binarization: config.data.binarize, seed: step.model.spec.seed, evaluation: true) }
        metadata = CheckpointMetadata(model: step.model.spec, dataset: config.data.name, binarize: config.data.binarize,
                                      trainSamples: step.feed.count)
    }

    /// The model of `config` over `train`, its step and the loop.
    public static func make(config: TrainConfig, train: Dataset, test: Dataset?, comm: Communicator,
                            output: RunOutput?) throws -> TrainingLoop {
        try TrainingLoop(config: config, step: try DataParallelStep.make(config: config, train: train, comm: comm),
                         test: test, output: output)
    }

    var comm: Communicator { step.comm }
    var model: VAEASModel { step.model }

    public func run() throws {
        let t = config.train
        let runStart = Date()
        var stop = false
        let stepsPerEpoch = step.stepsPerEpoch
        logger.info("training \(step.feed.count) samples on \(comm.size) rank(s), global batch \(t.batch), \(stepsPerEpoch) steps/epoch, \(model.parameters.count) parameters")
        for epoch in 1...t.epochs where !stop {
            let epochStart = Date()
            let perm = step.permutation(epoch: epoch)
            var total = StepStats()
            try perm.withUnsafeBufferPointer { p in
                for s in 0..<stepsPerEpoch {
                    let range = (s * t.batch)..<min((s + 1) * t.batch, p.count)
                    let st = try step(UnsafeBufferPointer(rebasing: p[range]), epoch: epoch)
                    total.add(st)
                    if t.logEvery > 0 && step.globalStep % t.logEvery == 0 { try logStep(st, epoch: epoch) }
                    progress?.step(epoch: epoch, step: s + 1, of: stepsPerEpoch, samples: total.count,
                                   loss: model.objective.summary(total)[0].1, since: epochStart)
                    if t.maxSteps > 0 && step.globalStep >= t.maxSteps { stop = true; break }
                }
            }
            let trainSeconds = Date().timeIntervalSince(epochStart)
            var record = JSONRecord()
            record.set("epoch", epoch)
            record.set("step", step.globalStep)
            record.set("ranks", comm.size)
            for (k, v) in model.objective.summary(total) { record.set(k, v) }
            if let labels = model.spec.classifier?.labels { record.set("labels", labels) }
            let last = stop || epoch == t.epochs
            let evalDue = config.eval.every > 0 && (epoch % config.eval.every == 0 || last)
            var evalSeconds = 0.0
            if evalDue, let testFeed {
                let e0 = Date()
                evaluate(testFeed, into: &record)
                evalSeconds = Date().timeIntervalSince(e0)
            }
            guard step.replicasIdentical() else { throw ReplicaDivergenceError(epoch: epoch) }
            record.set("replicas_identical", true)
            record.set("param_sum", step.parameterSum)
            record.set("samples", total.count)
            record.set("samples_per_s", Double(total.count) / trainSeconds)
            record.set("seconds", trainSeconds)
            record.set("eval_seconds", evalSeconds)
            record.set("elapsed", Date().timeIntervalSince(runStart))
            history.append(record)
            let checkpointDue = last || (t.checkpointEvery > 0 && epoch % t.checkpointEvery == 0)
            // Gathering the partitioned rows is collective; only rank 0 writes.
            let writer = checkpointDue && (output != nil || comm.size > 1) ? try model.checkpointWriter(metadata: metadata) : nil
            _ = try comm.rootOnly {
                try output?.appendMetrics(record)
                if let writer, let output { try writer.write(to: output.checkpointPath) }
            }
            progress?.epochDone(record, epochs: t.epochs)
        }
    }

    /// `steps.jsonl`: one line per `train.log_every` steps.
    private func logStep(_ st: StepStats, epoch: Int) throws {
        var r = JSONRecord()
        r.set("step", step.globalStep); r.set("epoch", epoch)
        for (k, v) in model.objective.summary(st) { r.set(k, v) }
        r.set("batch", st.count)
        _ = try comm.rootOnly { try output?.appendStep(r) }
    }

    /// Test ELBO, recon, KL and active units with one fixed noise draw per
    /// example, and the importance-weighted NLL when `eval.iw_samples` > 0
    /// (`Evaluator.likelihood`, sharded over ranks).
    private func evaluate(_ feed: DataFeed, into record: inout JSONRecord) {
        let e = config.eval
        let seed = model.spec.seed
        let single = Evaluator.likelihood(parameters: model.parameters, shape: model.spec.shape, feed: feed, comm: comm,
                                          iwSamples: 1, seed: seed, auThreshold: e.auThreshold, chunkRows: e.batch)
        record.set("test_elbo", single.elbo)
        record.set("test_recon", single.recon)
        record.set("test_kl", single.kl)
        record.set("test_au", single.activeUnits)
        if e.iwSamples > 0 {
            let r = Evaluator.likelihood(parameters: model.parameters, shape: model.spec.shape, feed: feed, comm: comm,
                                         iwSamples: e.iwSamples, seed: seed, auThreshold: e.auThreshold)
            record.set("test_nll", r.nll)
            record.set("iw_samples", r.iwSamples)
        }
    }
}
