import ArgumentParser
import VAEAS
import VAEASConfig

// The configuration's typed choices double as CLI option values.
extension Binarization: ExpressibleByArgument {}
extension SoftmaxKind: ExpressibleByArgument {}
extension MIEstimator: ExpressibleByArgument {}

/// `--config`, `--set` and `--data-dir`: how every config-reading subcommand
/// (`train`, `bench`, `show-config`) resolves its `TrainConfig`.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "YAML config file; keys not given keep their defaults (see `vaeas-dist show-config`).")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override one key, e.g. --set model.latent=20 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(name: .long, help: "Directory of the dataset's IDX files (overrides data.dir and $VAEAS_DATA_DIR).")
    var dataDir: String?

    func validate() throws {
        for o in overrides where !o.contains("=") {
            throw ValidationError("--set \(o): expected key=value, e.g. --set train.epochs=10")
        }
    }

    /// The config file (or the embedded default) with the overrides applied in order, validated.
    func resolve() throws -> TrainConfig { try Runtime.loadConfig(path: config, overrides: overrides, dataDir: dataDir) }
}

/// `--timeline FILE.json` and its step window (train and bench).
struct TimelineOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("""
        Write a Chrome trace (open in https://ui.perfetto.dev or chrome://tracing): one track per rank with data, \
        each layer's forward and backward, the collectives with their bytes, the gradient reduction, the optimizer, \
        checkpoint writes and evaluation, rank clocks aligned at a barrier. Rank 0 writes the file.
        """, valueName: "FILE.json"))
    var timeline: String?

    @Option(name: .long, help: ArgumentHelp("""
        Optimizer steps to record (1-based, inclusive), plus what follows step b before step b+1 (an evaluation, \
        a checkpoint) (default: train 1:20; bench the first 10 timed steps).
        """, valueName: "a:b"))
    var timelineSteps: String?

    func validate() throws {
        if let s = timelineSteps {
            guard timeline != nil else { throw ValidationError("--timeline-steps needs --timeline FILE.json") }
            guard TimelineWriter.parseWindow(s) != nil else {
                throw ValidationError("--timeline-steps: '\(s)' is not a step window a:b with 1 ≤ a ≤ b (e.g. 5:8)")
            }
        }
    }

    /// The writer (collective: every rank calls it), or nil without --timeline.
    func writer(comm: Communicator, defaultWindow: ClosedRange<Int>) -> TimelineWriter? {
        guard let timeline else { return nil }
        let window = timelineSteps.flatMap(TimelineWriter.parseWindow) ?? defaultWindow
        return TimelineWriter(path: timeline, window: window, comm: comm)
    }
}
