import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig
import VAEASData

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a VAE (objective.kind=vae) or VAE-AS (objective.kind=vaeas) data-parallel over the MPI ranks.",
        discussion: """
        Writes into --out: config.yaml (resolved), metrics.jsonl (one object per epoch), \
        steps.jsonl (when train.log_every > 0), model.safetensors, and checkpoints/step-N/ \
        (training state: parameters, Adam moments, the partitioned rows sharded by rank, and a \
        manifest) at every model checkpoint, every train.checkpoint_steps steps, every \
        train.checkpoint_minutes minutes, at train.max_steps and on a stop signal. \
        Without --config the embedded default runs: Fashion-MNIST from \
        /usr/share/datasets/fashion-mnist, dynamically binarized (see `vaeas-dist show-config`).

        --resume DIR continues the run in DIR from its newest intact checkpoint (a torn, \
        corrupt or hand-edited one is skipped, with the reason), at any rank count, appending \
        to its metrics.jsonl and steps.jsonl. The checkpoint must belong to the run: its \
        config's trajectory keys must match DIR/config.yaml, and the training and test data \
        must have the content it was trained on (a CRC-32 of the images and labels); \
        otherwise --resume refuses, naming the key or file. With --resume, --set may change \
        the keys that do not alter the trajectory (\(TrainConfig.resumableKeys.joined(separator: ", "))); \
        any other key needs --allow-config-change KEY (e.g. a lower train.lr after a \
        divergence). Every change from the checkpoint's config is recorded in DIR/run.jsonl.

        SIGTERM, SIGINT or SIGUSR1 on any rank: the ranks agree at the next step boundary, \
        write a checkpoint and exit with status \(Preemption.exitStatus); a second signal exits \
        at once. During the epoch-end evaluation the signal stops it within one chunk (the \
        epoch's checkpoint is written before its evaluation; the resumed run evaluates first). Under mpirun send SIGUSR1 to mpirun (forwarded to every rank); under srun, \
        scancel or --signal=USR1@SECONDS.

        A non-finite loss or gradient, or a loss over train.divergence_factor (default 100) \
        times the lowest step loss so far, stops the run with status 1 before the update, and \
        nothing of the diverged state is checkpointed (each checkpoint first checks the last \
        update's loss on its own batch); continue with --resume DIR --from-step N (any kept \
        checkpoint) and, say, --allow-config-change train.lr --set train.lr=….

        A rank that makes no progress for train.stall_timeout seconds (default 300; a peer \
        frozen or a call that never returns) ends the job with exit status \(StallWatchdog.exitStatus): \
        every live rank prints where it waits and which ranks it waits for, also written to \
        RUN/stall-rank-K.txt.

        Examples:
          mpirun -n 2 vaeas-dist train --config configs/mnist-vaeas-quick.yaml --data-dir ../shared/data --out runs/quick
          mpirun -n 3 vaeas-dist train --resume runs/quick --set train.epochs=20
        """)

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Output directory (default: runs/<dataset>-<date>-<time>).")
    var out: String?

    @Flag(name: .long, help: "Allow --out to be a directory that already holds a run's files (they are removed first).")
    var overwrite = false

    @Option(name: .long, help: ArgumentHelp("Continue the run in DIR from its newest intact checkpoint.", valueName: "DIR"))
    var resume: String?

    @Option(name: .long, help: ArgumentHelp(
        "With --resume: continue from the kept checkpoint of step N (checkpoints/step-N) instead of the newest, e.g. the last one before a divergence. The newer checkpoints are moved to checkpoints/abandoned-DATE/, and the logs cut back to step N.",
        valueName: "N"))
    var fromStep: Int?

    @Option(name: .long, help: ArgumentHelp(
        "With --resume: let KEY differ from the checkpoint's config, from DIR/config.yaml or a --set (repeatable). The change is recorded in DIR/run.jsonl.",
        valueName: "KEY"))
    var allowConfigChange: [String] = []

    @Flag(name: .long, help: "With --resume: continue on training or test data whose content differs from what the checkpoint was trained on.")
    var allowDataChange = false

    @Flag(name: .long, help: "Resolve the config, check the data on every rank, print the run's size and memory per rank, and exit.")
    var dryRun = false

    @OptionGroup var timelineOptions: TimelineOptions

    func validate() throws {
        if resume != nil && dryRun { throw ValidationError("--dry-run checks a new run; drop --resume") }
        if resume != nil {
            if options.config != nil { throw ValidationError("--resume uses the run's own config.yaml; drop --config (change keys with --set)") }
            if out != nil { throw ValidationError("--resume writes into its own directory; drop --out") }
            if overwrite { throw ValidationError("--resume appends to the run; drop --overwrite") }
        } else if !allowConfigChange.isEmpty || allowDataChange || fromStep != nil {
            throw ValidationError("--from-step, --allow-config-change and --allow-data-change go with --resume DIR")
        }
        if let fromStep, fromStep < 1 { throw ValidationError("--from-step expects a step ≥ 1 of a kept checkpoint, got \(fromStep)") }
    }

    func run() throws {
        Preemption.install()
        try Runtime.withCommunicator { comm in
            if let resume { return try resumeRun(resume, comm: comm) }
            // Every rank resolves the config and loads its data; they agree on the outcome,
            // so a rank whose data is missing ends the job instead of leaving the others waiting.
            let (config, data) = try comm.agree { () throws -> (TrainConfig, (train: Dataset, test: Dataset?)) in
                var config = try options.resolve()
                try Runtime.absoluteDataDir(&config)
                return (config, try Runtime.loadData(config))
            }
            if dryRun { return try RunReport.dryRun(config: config, train: data.train, comm: comm) }
            let outDir = out ?? Train.defaultOutDirectory(config, comm: comm)
            let output: RunOutput? = try comm.rootOnly {
                let o = try RunOutput(directory: outDir, overwrite: overwrite, stepLog: config.train.logEvery > 0)
                try o.writeConfig(config.yaml())
                return o
            } ?? nil
            let loop = try comm.agree {
                try TrainingLoop.make(config: config, train: data.train, test: data.test, comm: comm, output: output)
            }
            try RunReport.recordStart(in: outDir, config: config, loop: loop, comm: comm)
            try drive(loop, directory: outDir, config: config, comm: comm, announce: nil)
        }
    }

    /// What a new run and a resumed one do alike once the loop is built: the
    /// progress display, the header, the timeline window (the first 20 steps
    /// this process takes), the loop, and the summary.
    func drive(_ loop: TrainingLoop, directory: String, config: TrainConfig, comm: Communicator, announce: String?) throws {
        loop.runDirectory = directory
        if comm.isRoot {
            loop.progress = Progress(totalEpochs: config.train.epochs, maxSteps: config.train.maxSteps)
            if let announce { print(announce) }
            print(RunReport.header(config: config, step: loop.step, directory: directory))
        }
        try Runtime.checkSameData(loop.identity, comm: comm)
        let first = loop.start.globalStep + 1
        loop.step.timeline = timelineOptions.writer(comm: comm, defaultWindow: first...(first + 19))
        if config.train.stallTimeout > 0 {
            let watchdog = StallWatchdog(timeout: config.train.stallTimeout, rank: comm.rank, size: comm.size,
                                         host: Runtime.hostName(), runDirectory: directory)
            loop.watchdog = watchdog
            watchdog.start()
        }
        defer { loop.watchdog?.stop() }
        let t0 = Date()
        try loop.run()
        try loop.step.timeline?.finish()
        if comm.isRoot {
            print(RunReport.summary(loop.history, seconds: Date().timeIntervalSince(t0), directory: directory,
                                    continueWith: RunReport.continueHint(config: config, step: loop.step)))
        }
    }

    /// `--resume DIR`: the newest intact checkpoint, the run's config with the
    /// allowed overrides, the state restored (resharded to this rank count),
    /// the logs trimmed to the checkpoint and appended to.
    func resumeRun(_ dir: String, comm: Communicator) throws {
        // Rank 0 chooses (and says what it skipped); every rank then reads that one.
        // "" = the run has no checkpoint yet (killed before its first): it starts over from step 0.
        let chosen = try comm.rootOnly { () throws -> String in
            if let fromStep {
                let path = try TrainingCheckpoint.kept(step: fromStep, in: dir)
                TrainingCheckpoint.removeStaleTemporaries(in: dir)
                return path
            }
            let found = TrainingCheckpoint.newestIntact(in: dir)
            for s in found.skipped { print("resume: skipping \(s)") }
            guard let path = found.path else {
                if found.count > 0 {
                    throw CheckpointError(path: dir, message: "cannot resume: none of its \(found.count) checkpoint(s) is intact ("
                                          + found.skipped.joined(separator: "; ") + ")")
                }
                guard FileManager.default.fileExists(atPath: dir + "/config.yaml") else {
                    throw CheckpointError(path: dir, message: "cannot resume: no checkpoints/ and no config.yaml (not a vaeas-dist train directory)")
                }
                return ""
            }
            TrainingCheckpoint.removeStaleTemporaries(in: dir)
            return path
        }
        let path = String(decoding: comm.broadcast(bytes: Array((chosen ?? "").utf8)), as: UTF8.self)
        if path.isEmpty { return try restartRun(dir, comm: comm) }
        let name = "checkpoints/" + URL(fileURLWithPath: path).lastPathComponent
        let (manifest, plan, data) = try comm.agree { () throws -> (StateManifest, ResumePlan, (train: Dataset, test: Dataset?)) in
            let manifest = try TrainingCheckpoint.verify(path)
            let plan = try resumedConfig(dir, checkpoint: (manifest.config, path + "/manifest.json", name), comm: comm)
            return (manifest, plan, try Runtime.loadData(plan.config))
        }
        let config = plan.config
        // A pending epoch end that was done after the checkpoint (its metrics line is there) is not done again.
        let settled = try comm.rootOnly { manifest.position.settlingPendingEnd(metricsPath: dir + "/metrics.jsonl") }
        let isSettled = comm.broadcast(bytes: [settled?.pendingEpochEnd == nil && manifest.position.pendingEpochEnd != nil ? 1 : 0])[0] == 1
        var position = manifest.position
        if isSettled { position.metricsLines += 1; position.pendingEpochEnd = nil }
        let output: RunOutput? = try comm.rootOnly {
            let o = try RunOutput(resuming: dir, metricsLines: position.metricsLines, stepsLines: position.stepsLines,
                                  stepLog: config.train.logEvery > 0)
            try o.writeConfig(config.yaml())
            return o
        } ?? nil
        let loop = try comm.agree { () throws -> TrainingLoop in
            let step = try DataParallelStep.make(config: config, train: data.train, comm: comm)
            let loop = try TrainingLoop(config: config, step: step, test: data.test, output: output)
            // The identity before the tensors: a layout or data mismatch is named as such, not as a shape error.
            if let saved = manifest.identity {
                if let m = saved.layoutMismatch(loop.identity) { throw ResumeRefused("cannot resume from \(path): \(m)") }
                if !allowDataChange, let m = saved.dataMismatches(loop.identity).first {
                    throw ResumeRefused("cannot resume from \(path) on rank \(comm.rank): \(m). Pass --allow-data-change to continue on the data as they are now")
                }
            }
            try TrainingCheckpoint.restore(step, from: path, manifest: manifest)
            return loop
        }
        loop.start = position
        loop.newestCheckpoint = path
        if fromStep != nil {
            // The checkpoints after the chosen one belong to the abandoned trajectory: a later
            // --resume must not pick them, nor pruning keep them over the new ones.
            let moved = try comm.rootOnly { try TrainingCheckpoint.setAsideNewer(than: position.globalStep, in: dir) } ?? nil
            if comm.isRoot, let moved, !moved.names.isEmpty {
                print("resume: moved the newer checkpoints \(moved.names.joined(separator: ", ")) to \(moved.directory)")
            }
        }
        if comm.isRoot && manifest.identity == nil {
            print("resume: \(name) predates run identities: its config was checked against config.yaml, its data and layout could not be")
        }
        try RunReport.recordStart(in: dir, config: config, loop: loop, comm: comm, resumedFrom: path, changes: plan.changes)
        try drive(loop, directory: dir, config: config, comm: comm,
                  announce: "vaeas-dist train: resuming \(dir) from \(URL(fileURLWithPath: path).lastPathComponent) "
                      + "(epoch \(position.epoch), step \(position.globalStep); saved at \(manifest.ranks) rank(s), now \(comm.size))"
                      + (plan.changes.isEmpty ? "" : "\nresume: changed from the checkpoint's config: "
                          + plan.changes.map(\.description).joined(separator: "; ")))
    }

    /// The config a resumed run continues with (`ResumePolicy`): DIR/config.yaml
    /// checked against the checkpoint's (`checkpoint`: its YAML, where it was
    /// read, its name), with --set, --data-dir and --allow-config-change;
    /// without a checkpoint, config.yaml alone.
    func resumedConfig(_ dir: String, checkpoint: (yaml: String, source: String, name: String)?,
                       comm: Communicator) throws -> ResumePlan {
        let runFile = dir + "/config.yaml"
        let run = try FileManager.default.fileExists(atPath: runFile)
            ? ResumePolicy.recorded(yaml: try String(contentsOfFile: runFile, encoding: .utf8), source: runFile) : nil
        guard let saved = try checkpoint.map({ try ResumePolicy.recorded(yaml: $0.yaml, source: $0.source) }) ?? run else {
            throw CheckpointError(path: dir, message: "cannot resume: no config.yaml")
        }
        if saved.predatesMDEstimator && comm.isRoot && saved.config.objective.kind == .vaeas {
            print("resume: the run's config predates objective.md_estimator; continuing with kl_minus_mi, the objective it was trained with")
        }
        let runLog = (try? String(contentsOfFile: dir + "/run.jsonl", encoding: .utf8)) ?? ""
        var request = ResumeRequest(overrides: options.overrides, allowedChanges: allowConfigChange,
                                    allowDataChange: allowDataChange,
                                    recordedChanges: ResumePolicy.recordedChanges(runLog: runLog))
        if let d = options.dataDir { request.overrides.append("data.dir=" + d) }
        var (config, _) = try ResumePolicy.config(checkpoint: saved.config, run: run?.config,
                                                  checkpointName: checkpoint?.name ?? runFile, runFile: runFile, request: request)
        try Runtime.absoluteDataDir(&config)
        return ResumePlan(config: config, changes: config.changes(from: saved.config))
    }

    struct ResumePlan {
        let config: TrainConfig
        /// Every key that differs from the checkpoint's config (for run.jsonl and the announcement).
        let changes: [TrainConfig.Change]
    }

    /// `--resume` of a run stopped before its first checkpoint (a requeued
    /// job preempted early): the run starts over from step 0 in its own
    /// directory with its config.yaml, its logs emptied.
    func restartRun(_ dir: String, comm: Communicator) throws {
        let (plan, data) = try comm.agree { () throws -> (ResumePlan, (train: Dataset, test: Dataset?)) in
            let plan = try resumedConfig(dir, checkpoint: nil, comm: comm)
            return (plan, try Runtime.loadData(plan.config))
        }
        let config = plan.config
        let output: RunOutput? = try comm.rootOnly {
            let o = try RunOutput(resuming: dir, metricsLines: 0, stepsLines: 0, stepLog: config.train.logEvery > 0)
            try o.writeConfig(config.yaml())
            return o
        } ?? nil
        let loop = try comm.agree {
            try TrainingLoop.make(config: config, train: data.train, test: data.test, comm: comm, output: output)
        }
        try RunReport.recordStart(in: dir, config: config, loop: loop, comm: comm, changes: plan.changes)
        try drive(loop, directory: dir, config: config, comm: comm,
                  announce: "vaeas-dist train: \(dir) has no checkpoint yet (stopped before its first); starting it from step 0 with its config.yaml")
    }

    /// Chosen on rank 0 (its clock) and broadcast, so every rank agrees.
    static func defaultOutDirectory(_ config: TrainConfig, comm: Communicator) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.locale = Locale(identifier: "en_US_POSIX")
        let name = "runs/\(config.data.name)-\(f.string(from: Date()))"
        return String(decoding: comm.broadcast(bytes: Array(name.utf8)), as: UTF8.self)
    }
}

struct ShowConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-config",
        abstract: "Print the resolved config (the embedded default, or --config with --set overrides).",
        discussion: """
        Examples:
          vaeas-dist show-config                                         # every key with its default and a comment
          vaeas-dist show-config --config configs/mnist-vaeas.yaml --set objective.alpha=0.5
        """)

    @OptionGroup var options: ConfigOptions

    func run() throws {
        do {
            let c = try options.resolve()
            let plain = options.config == nil && options.overrides.isEmpty && options.dataDir == nil
            print(plain ? TrainConfig.embeddedDefaultYAML : c.yaml(), terminator: "")
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
