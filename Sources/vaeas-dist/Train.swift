import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a VAE (objective.kind=vae) data-parallel over the MPI ranks.",
        discussion: """
        Writes into --out: config.yaml (resolved), metrics.jsonl (one object per epoch),
        steps.jsonl (when train.log_every > 0) and model.safetensors.
        Without --config the embedded default runs: Fashion-MNIST from
        /usr/share/datasets/fashion-mnist, dynamically binarized (see `vaeas-dist show-config`).
        """)

    @Option(name: .long, help: "YAML config file; keys not given keep their defaults (see `vaeas-dist show-config`).")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override one key, e.g. --set model.latent=20 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(name: .long, help: "Output directory (default: runs/<dataset>-<date>-<time>).")
    var out: String?

    @Option(name: .long, help: "Directory of the dataset's IDX files (overrides data.dir and $VAEAS_DATA_DIR).")
    var dataDir: String?

    @Flag(name: .long, help: "Allow --out to be a directory that already holds a run's files (they are replaced).")
    var overwrite = false

    mutating func validate() throws {
        for o in overrides where !o.contains("=") {
            throw ValidationError("--set \(o): expected key=value, e.g. --set train.epochs=10")
        }
    }

    func run() throws {
        try Runtime.withCommunicator { comm in
            let config = try Runtime.loadConfig(path: self.config, overrides: overrides, dataDir: dataDir)
            let data = try Runtime.loadData(config)
            let outDir = out ?? Train.defaultOutDirectory(config, comm: comm)
            let output: RunOutput? = try comm.rootOnly {
                let o = try RunOutput(directory: outDir, overwrite: overwrite, stepLog: config.train.logEvery > 0)
                try o.writeConfig(config.yaml())
                return o
            } ?? nil
            let trainer = try Trainer(config: config, train: data.train, test: data.test, comm: comm, output: output)
            if comm.isRoot {
                trainer.progress = Progress()
                print("vaeas-dist train: \(config.data.name) (\(data.train.count) samples), \(comm.size) rank(s), writing \(outDir)")
            }
            try trainer.run()
            if comm.isRoot { print("done: \(outDir)/model.safetensors") }
        }
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
        abstract: "Print the resolved config (the embedded default, or --config with --set overrides).")

    @Option(name: .long, help: "YAML config file.")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override one key (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    func run() throws {
        do {
            let c = try Runtime.loadConfig(path: config, overrides: overrides, dataDir: nil)
            print(config == nil && overrides.isEmpty ? TrainConfig.embeddedDefaultYAML : c.yaml(), terminator: "")
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
