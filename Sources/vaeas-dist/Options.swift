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
