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

        --resume DIR continues the run in DIR from its newest intact checkpoint (a torn or \
        corrupt one is skipped, with the reason), at any rank count, appending to its \
        metrics.jsonl and steps.jsonl. With --resume, --set may change only keys that do not \
        alter the trajectory: \(Train.resumableKeys.joined(separator: ", ")) (train.lr does \
        alter it: allowed for recovering from a divergence).

        SIGTERM, SIGINT or SIGUSR1 on any rank: the ranks agree at the next step boundary, \
        write a checkpoint and exit with status \(Preemption.exitStatus); a second signal exits \
        at once. Under mpirun send SIGUSR1 to mpirun (forwarded to every rank); under srun, \
        scancel or --signal=USR1@SECONDS.

        A rank that makes no progress for train.stall_timeout seconds (default 300; a peer \
        frozen or a call that never returns) ends the job with exit status \(StallWatchdog.exitStatus): \
        every live rank prints where it waits and which ranks it waits for, also written to \
        RUN/stall-rank-K.txt.

        Examples:
          mpirun -n 2 vaeas-dist train --config configs/mnist-vaeas-quick.yaml --data-dir ../shared/data --out runs/quick
          mpirun -n 3 vaeas-dist train --resume runs/quick --set train.epochs=20
        """)

    /// Keys `--resume` lets `--set` change: none alters the trajectory up to the
    /// checkpoint (`train.lr` alters it from there on: allowed to recover from a divergence).
    static let resumableKeys = ["train.epochs", "train.max_steps", "train.log_every", "train.checkpoint_every",
                                "train.checkpoint_steps", "train.checkpoint_minutes", "train.keep_checkpoints", "train.lr", "train.stall_timeout",
                                "eval.every", "eval.batch", "eval.iw_samples", "eval.au_threshold", "data.dir"]

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Output directory (default: runs/<dataset>-<date>-<time>).")
    var out: String?

    @Flag(name: .long, help: "Allow --out to be a directory that already holds a run's files (they are removed first).")
    var overwrite = false

    @Option(name: .long, help: ArgumentHelp("Continue the run in DIR from its newest intact checkpoint.", valueName: "DIR"))
    var resume: String?

    @Flag(name: .long, help: "Resolve the config, check the data on every rank, print the run's size and memory per rank, and exit.")
    var dryRun = false

    @OptionGroup var timelineOptions: TimelineOptions

    func validate() throws {
        if resume != nil && dryRun { throw ValidationError("--dry-run checks a new run; drop --resume") }
        if resume != nil {
            if options.config != nil { throw ValidationError("--resume uses the run's own config.yaml; drop --config (change keys with --set)") }
            if out != nil { throw ValidationError("--resume writes into its own directory; drop --out") }
            if overwrite { throw ValidationError("--resume appends to the run; drop --overwrite") }
        }
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
            try RunReport.recordStart(in: outDir, config: config, step: loop.step, comm: comm)
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
        if comm.isRoot { print(RunReport.summary(loop.history, seconds: Date().timeIntervalSince(t0), directory: directory)) }
    }

    /// `--resume DIR`: the newest intact checkpoint, the run's config with the
    /// allowed overrides, the state restored (resharded to this rank count),
    /// the logs trimmed to the checkpoint and appended to.
    func resumeRun(_ dir: String, comm: Communicator) throws {
        // Rank 0 chooses (and says what it skipped); every rank then reads that one.
        // "" = the run has no checkpoint yet (killed before its first): it starts over from step 0.
        let chosen = try comm.rootOnly { () throws -> String in
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
        let (manifest, config, data) = try comm.agree { () throws -> (StateManifest, TrainConfig, (train: Dataset, test: Dataset?)) in
            let manifest = try TrainingCheckpoint.verify(path)
            let config = try resumedConfig(yaml: manifest.config, source: path + "/manifest.json", comm: comm)
            return (manifest, config, try Runtime.loadData(config))
        }
        let position = manifest.position
        let output: RunOutput? = try comm.rootOnly {
            let o = try RunOutput(resuming: dir, metricsLines: position.metricsLines, stepsLines: position.stepsLines,
                                  stepLog: config.train.logEvery > 0)
            try o.writeConfig(config.yaml())
            return o
        } ?? nil
        let loop = try comm.agree { () throws -> TrainingLoop in
            let step = try DataParallelStep.make(config: config, train: data.train, comm: comm)
            try TrainingCheckpoint.restore(step, from: path, manifest: manifest)
            return try TrainingLoop(config: config, step: step, test: data.test, output: output)
        }
        loop.start = position
        try RunReport.recordStart(in: dir, config: config, step: loop.step, comm: comm, resumedFrom: path)
        try drive(loop, directory: dir, config: config, comm: comm,
                  announce: "vaeas-dist train: resuming \(dir) from \(URL(fileURLWithPath: path).lastPathComponent) "
                      + "(epoch \(position.epoch), step \(position.globalStep); saved at \(manifest.ranks) rank(s), now \(comm.size))")
    }

    /// The run's recorded config with the overrides `--resume` allows.
    func resumedConfig(yaml: String, source: String, comm: Communicator) throws -> TrainConfig {
        var config = try TrainConfig.parse(yaml: yaml, source: source)
        // A run begun before objective.md_estimator existed (issue #20) trained MD̂ = KL − Î: it goes on so,
        // not with today's default.
        if !yaml.contains("md_estimator:") {
            try config.set("objective.md_estimator", choice: MDEstimator.klMinusMI)
            if comm.isRoot && config.objective.kind == .vaeas {
                print("resume: the run's config predates objective.md_estimator; continuing with kl_minus_mi, the objective it was trained with")
            }
        }
        for o in options.overrides {
            let key = String(o[..<(o.firstIndex(of: "=") ?? o.endIndex)]).trimmingCharacters(in: .whitespaces)
            guard Train.resumableKeys.contains(key) else {
                throw ConfigError(key: key, source: "--set", message: "cannot change on --resume: it alters the trajectory "
                                  + "of the run being continued; keys --resume can change: "
                                  + Train.resumableKeys.joined(separator: ", "))
            }
            try config.set(o)
        }
        if let d = options.dataDir { try config.set("data.dir", to: .string(d)) }
        try Runtime.absoluteDataDir(&config)
        try config.validate()
        return config
    }

    /// `--resume` of a run stopped before its first checkpoint (a requeued
    /// job preempted early): the run starts over from step 0 in its own
    /// directory with its config.yaml, its logs emptied.
    func restartRun(_ dir: String, comm: Communicator) throws {
        let (config, data) = try comm.agree { () throws -> (TrainConfig, (train: Dataset, test: Dataset?)) in
            let yaml = try String(contentsOfFile: dir + "/config.yaml", encoding: .utf8)
            let config = try resumedConfig(yaml: yaml, source: dir + "/config.yaml", comm: comm)
            return (config, try Runtime.loadData(config))
        }
        let output: RunOutput? = try comm.rootOnly {
            let o = try RunOutput(resuming: dir, metricsLines: 0, stepsLines: 0, stepLog: config.train.logEvery > 0)
            try o.writeConfig(config.yaml())
            return o
        } ?? nil
        let loop = try comm.agree {
            try TrainingLoop.make(config: config, train: data.train, test: data.test, comm: comm, output: output)
        }
        try RunReport.recordStart(in: dir, config: config, step: loop.step, comm: comm)
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
