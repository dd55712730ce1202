import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import Foundation
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
    public var progress: Progress?
    /// One record per epoch, as written to `metrics.jsonl`.
    public private(set) var history: [JSONRecord] = []
    /// What the checkpoint's metadata says about this run.
    public private(set) var metadata: CheckpointMetadata
    /// The run's identity as this rank sees it (its data): in every training-state manifest.
    public let identity: RunIdentity

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
        if config.data.limit > 0 { metadata.trainSubset = TrainingSubset(config.data) }
        identity = RunIdentity(config: config, spec: step.model.spec, train: step.feed.dataset, test: test)
    }

    /// The model of `config` over `train`, its step and the loop.
    public static func make(config: TrainConfig, train: Dataset, test: Dataset?, comm: Communicator,
                            output: RunOutput?) throws -> TrainingLoop {
        try TrainingLoop(config: config, step: try DataParallelStep.make(config: config, train: train, comm: comm),
                         test: test, output: output)
    }

    var comm: Communicator { step.comm }
    var model: VAEASModel { step.model }

    /// The run's directory on every rank (shards of training-state
    /// checkpoints are written by each rank); nil: no training-state checkpoints.
    public var runDirectory: String?
    /// Where to start: `.start`, or a restored checkpoint's position (`--resume`).
    public var start = TrainingPosition.start
    /// `train.stall_timeout`: told of every step, phase and communication call.
    public var watchdog: StallWatchdog? {
        didSet { step.comm.monitor = watchdog }
    }
    private var lastStateSave = Date()
    /// The newest training-state checkpoint (the one resumed from, then each written): named when the run diverges.
    public var newestCheckpoint: String?
    /// The last step's global batch and epoch, for the check before a checkpoint.
    /// Reused every step (no allocation in the loop once it has grown to a batch).
    private var lastBatch: [Int32] = []
    private var lastBatchEpoch = 0
    private var checkedAtStep = -1

    public func run() throws {
        do { try train() } catch var e as DivergenceError {
            e.newest = newestCheckpoint
            throw e
        }
    }

    private func train() throws {
        let t = config.train
        let position = start
        let runStart = Date().addingTimeInterval(-position.elapsed)
        var stop = false
        let stepsPerEpoch = step.stepsPerEpoch
        let planned = t.epochs * stepsPerEpoch
        step.totalSteps = t.maxSteps > 0 ? min(t.maxSteps, planned) : planned
        step.klAnnealSteps = config.objective.klAnnealSteps
        if t.maxSteps > 0 && position.globalStep >= t.maxSteps {
            throw ConfigError(key: "train.max_steps", source: nil,
                              message: "the run already took \(position.globalStep) steps (train.max_steps = \(t.maxSteps)); "
                                  + "raise it, or set it to 0 for no cap, e.g. --set train.max_steps=0")
        }
        guard position.epoch <= t.epochs || position.pendingEpochEnd != nil else {
            throw ConfigError(key: "train.epochs", source: nil,
                              message: "the run already finished its \(t.epochs) epochs; raise it to continue, e.g. --set train.epochs=\(t.epochs + 10)")
        }
        // Checkpointed before its epoch's evaluation: that end comes first.
        if let pending = position.pendingEpochEnd { try finishEpoch(pending, stopped: false, saved: true, runStart: runStart) }
        guard position.epoch <= t.epochs else { return }
        for epoch in position.epoch...t.epochs where !stop {
            let epochStart = Date()
            let perm = step.permutation(epoch: epoch)
            let resumed = epoch == position.epoch
            var total = resumed ? position.epochTotals.stats : StepStats()
            let samplesBefore = total.count   // done before a resume: not part of this epoch's rate
            try perm.withUnsafeBufferPointer { p in
                for s in (resumed ? position.stepInEpoch : 0)..<stepsPerEpoch {
                    watchdog?.mark(step: step.globalStep + 1, phase: "training step")
                    FaultInjection.stallIfAsked(step: step.globalStep + 1, rank: comm.rank)
                    try FaultInjection.failIfAsked(step: step.globalStep + 1, rank: comm.rank)
                    step.requestStop = Preemption.signal != 0
                    step.requestCheckpoint = comm.isRoot && t.checkpointMinutes > 0
                        && Date().timeIntervalSince(lastStateSave) >= t.checkpointMinutes * 60
                    let range = (s * t.batch)..<min((s + 1) * t.batch, p.count)
                    let st = try step(UnsafeBufferPointer(rebasing: p[range]), epoch: epoch)
                    lastBatch.removeAll(keepingCapacity: true)
                    lastBatch.append(contentsOf: p[range])
                    lastBatchEpoch = epoch
                    total.add(st)
                    if t.logEvery > 0 && step.globalStep % t.logEvery == 0 {
                        try logStep(st, epoch: epoch, elapsed: Date().timeIntervalSince(runStart))
                    }
                    progress?.step(epoch: epoch, step: s + 1, of: stepsPerEpoch, samples: total.count,
                                   loss: model.objective.summary(total)[0].1, since: epochStart)
                    // The position after this step: what a checkpoint taken now resumes from.
                    let here = TrainingPosition(globalStep: step.globalStep, epoch: epoch, stepInEpoch: s + 1,
                                                epochTotals: ExactStats(total), elapsed: Date().timeIntervalSince(runStart),
                                                metricsLines: output?.metricsLines ?? 0, stepsLines: output?.stepsLines ?? 0)
                    if step.agreedStop {
                        try saveState(here)
                        throw PreemptedError(signal: Preemption.signal, epoch: epoch, step: step.globalStep,
                                             directory: runDirectory ?? "(no output directory)")
                    }
                    if t.maxSteps > 0 && step.globalStep >= t.maxSteps {
                        // Saved before the partial epoch's metrics line, which a resume drops.
                        try saveState(here)
                        stop = true
                        break
                    }
                    if (t.checkpointSteps > 0 && step.globalStep % t.checkpointSteps == 0) || step.agreedCheckpoint {
                        try saveState(here)
                    }
                }
            }
            let end = EpochEnd(epoch: epoch, totals: ExactStats(total), samplesBefore: samplesBefore,
                               trainSeconds: Date().timeIntervalSince(epochStart))
            // The epoch's training-state checkpoint comes before its evaluation, with the end marked
            // pending: a stop signal during the evaluation then waits for nothing and loses nothing.
            // (A train.max_steps stop saved its state mid-epoch already.)
            let due = stop || epoch == t.epochs || (t.checkpointEvery > 0 && epoch % t.checkpointEvery == 0)
            if due && !stop { try saveState(nextEpoch(after: end, runStart: runStart)) }
            try finishEpoch(end, stopped: stop, saved: stop || due, runStart: runStart)
        }
    }

    /// The position after `end`'s epoch, its end still to do.
    private func nextEpoch(after end: EpochEnd, runStart: Date) -> TrainingPosition {
        TrainingPosition(globalStep: step.globalStep, epoch: end.epoch + 1, stepInEpoch: 0,
                         epochTotals: ExactStats(StepStats()), elapsed: Date().timeIntervalSince(runStart),
                         metricsLines: output?.metricsLines ?? 0, stepsLines: output?.stepsLines ?? 0, pendingEpochEnd: end)
    }

    /// The end of an epoch: the test evaluation when due, the replica check, the
    /// `metrics.jsonl` line and `model.safetensors` when due. A stop signal cuts
    /// the evaluation short (within one chunk of it); the state is then saved,
    /// unless it already is (`saved`), with this end pending, and the run
    /// stops with status 75: the resumed run does the end first.
    private func finishEpoch(_ end: EpochEnd, stopped: Bool, saved: Bool, runStart: Date) throws {
        let t = config.train, epoch = end.epoch, total = end.totals.stats
        var record = JSONRecord()
        record.set("epoch", epoch)
        record.set("step", step.globalStep)
        record.set("ranks", comm.size)
        for (k, v) in model.objective.summary(total) { record.set(k, v) }
        if let labels = model.spec.classifier?.labels { record.set("labels", labels) }
        let last = stopped || epoch == t.epochs
        let evalDue = config.eval.every > 0 && (epoch % config.eval.every == 0 || last)
        var evalSeconds = 0.0
        if evalDue, let testFeed {
            watchdog?.mark(step: step.globalStep, phase: "evaluation after epoch \(epoch)")
            let e0 = Date()
            let completed = Trace.span("evaluation", .evaluation) { evaluate(testFeed, into: &record) }
            if !completed {
                if !saved { try saveState(nextEpoch(after: end, runStart: runStart)) }
                throw PreemptedError(signal: Preemption.signal, epoch: epoch, step: step.globalStep,
                                     directory: runDirectory ?? "(no output directory)")
            }
            evalSeconds = Date().timeIntervalSince(e0)
        }
        guard step.replicasIdentical() else { throw ReplicaDivergenceError(epoch: epoch) }
        record.set("replicas_identical", true)
        record.set("param_sum", step.parameterSum)
        record.set("samples", total.count)
        record.set("samples_per_s", Double(total.count - end.samplesBefore) / end.trainSeconds)
        record.set("seconds", end.trainSeconds)
        record.set("eval_seconds", evalSeconds)
        record.set("elapsed", Date().timeIntervalSince(runStart))
        history.append(record)
        watchdog?.mark(step: step.globalStep, phase: "end of epoch \(epoch) (metrics, checkpoint)")
        let checkpointDue = last || (t.checkpointEvery > 0 && epoch % t.checkpointEvery == 0)
        // Gathering the partitioned rows is collective; only rank 0 writes.
        metadata.epoch = epoch
        metadata.step = step.globalStep
        if checkpointDue { try checkBeforeCheckpoint() }
        try Trace.span("model checkpoint", .checkpoint,
                       name: checkpointDue ? "model checkpoint (model.safetensors)" : "metrics line") {
            let writer = checkpointDue && (output != nil || comm.size > 1) ? try model.checkpointWriter(metadata: metadata) : nil
            // The line last: it marks the end as done (`TrainingPosition.settlingPendingEnd`).
            _ = try comm.rootOnly {
                if let writer, let output { try writer.write(to: output.checkpointPath) }
                try output?.appendMetrics(record)
            }
        }
        progress?.epochDone(record, epochs: t.epochs)
    }

    /// A training-state checkpoint at `position` (collective; no-op without a run directory).
    private func saveState(_ position: TrainingPosition) throws {
        guard let runDirectory else { return }
        try checkBeforeCheckpoint()
        Trace.begin("training-state checkpoint", .checkpoint, name: "training-state checkpoint (step \(position.globalStep))")
        defer { Trace.end() }
        // The lines known on rank 0 go into the manifest rank 0 writes.
        newestCheckpoint = try TrainingCheckpoint.save(step, position: position, config: config.yaml(), identity: identity,
                                                       runDirectory: runDirectory, keep: config.train.keepCheckpoints)
        lastStateSave = Date()
    }

    /// `train.divergence_factor` before anything is checkpointed (collective):
    /// the step checks its loss before its update, so the update's effect is
    /// checked here, on the loss of the same batch with the same noise at the
    /// parameters about to be saved. One forward pass per checkpoint.
    private func checkBeforeCheckpoint() throws {
        guard step.divergence.factor > 0, !lastBatch.isEmpty, checkedAtStep != step.globalStep else { return }
        checkedAtStep = step.globalStep
        let loss = lastBatch.withUnsafeBufferPointer { step.forward.losses($0, epoch: lastBatchEpoch).objective }
        try step.divergence.observe(loss, epoch: lastBatchEpoch, step: step.globalStep, beforeCheckpoint: true)
    }

    /// `steps.jsonl`: one line per `train.log_every` steps.
    /// With the step's loss terms: the learning rate, the L2 norm of the
    /// step's whole gradient (replicated parameters, reduced, and every rank's
    /// rows of the output layer; collective) and the seconds since the run began.
    private func logStep(_ st: StepStats, epoch: Int, elapsed: Double) throws {
        var r = JSONRecord()
        r.set("step", step.globalStep); r.set("epoch", epoch)
        for (k, v) in model.objective.summary(st) { r.set(k, v) }
        r.set("batch", st.count)
        // In the config's Double, so that a constant rate is reported exactly as configured.
        let f = Double(step.lastLRFactor)
        r.set("lr", config.train.lr * f)
        if config.train.clsLR > 0 { r.set("cls_lr", config.train.clsLR * f) }
        if config.objective.klAnnealSteps > 0 { r.set("beta", model.objective.beta) }
        r.set("grad_norm", step.lastGradNorm ?? step.gradientNorm())
        r.set("time", elapsed)
        _ = try comm.rootOnly { try output?.appendStep(r) }
    }

    /// Test ELBO, recon, KL and active units with one fixed noise draw per
    /// example, and the importance-weighted NLL when `eval.iw_samples` > 0
    /// (`Evaluator.likelihood`, sharded over ranks).
    /// Returns false when a stop signal cut it short (every rank agrees).
    private func evaluate(_ feed: DataFeed, into record: inout JSONRecord) -> Bool {
        let e = config.eval
        let seed = model.spec.seed
        let watchdog = self.watchdog
        let beat: () -> Void = { watchdog?.beat() }
        let stop: () -> Bool = { Preemption.signal != 0 }
        let single = Evaluator.likelihood(parameters: model.parameters, shape: model.spec.shape, feed: feed, comm: comm,
                                          iwSamples: 1, seed: seed, auThreshold: e.auThreshold, chunkRows: e.batch,
                                          progress: beat, shouldStop: stop)
        if single.interrupted { return false }
        record.set("test_elbo", single.elbo)
        record.set("test_recon", single.recon)
        record.set("test_kl", single.kl)
        record.set("test_au", single.activeUnits)
        if e.iwSamples > 0 {
            let r = Evaluator.likelihood(parameters: model.parameters, shape: model.spec.shape, feed: feed, comm: comm,
                                         iwSamples: e.iwSamples, seed: seed, auThreshold: e.auThreshold, progress: beat,
                                         shouldStop: stop)
            if r.interrupted { return false }
            record.set("test_nll", r.nll)
            record.set("iw_samples", r.iwSamples)
        }
        return true
    }
}
