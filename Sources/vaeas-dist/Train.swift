import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a VAE (objective.kind=vae) or VAE-AS (objective.kind=vaeas) data-parallel over the MPI ranks.",
        discussion: """
        Writes into --out: config.yaml (resolved), metrics.jsonl (one object per epoch),
        steps.jsonl (when train.log_every > 0) and model.safetensors.
        Without --config the embedded default runs: Fashion-MNIST from
        /usr/share/datasets/fashion-mnist, dynamically binarized (see `vaeas-dist show-config`).

        Example:
          mpirun -n 2 vaeas-dist train --config configs/mnist-vaeas-quick.yaml --data-dir ../shared/data --out runs/quick
        """)

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Output directory (default: runs/<dataset>-<date>-<time>).")
    var out: String?

    @Flag(name: .long, help: "Allow --out to be a directory that already holds a run's files (they are replaced).")
    var overwrite = false

    func run() throws {
        try Runtime.withCommunicator { comm in
            let config = try options.resolve()
            let data = try Runtime.loadData(config)
            let outDir = out ?? Train.defaultOutDirectory(config, comm: comm)
            let output: RunOutput? = try comm.rootOnly {
                let o = try RunOutput(directory: outDir, overwrite: overwrite, stepLog: config.train.logEvery > 0)
                try o.writeConfig(config.yaml())
                return o
            } ?? nil
            let loop = try TrainingLoop.make(config: config, train: data.train, test: data.test, comm: comm, output: output)
            if comm.isRoot {
                loop.progress = Progress()
                print("vaeas-dist train: \(config.data.name) (\(data.train.count) samples), \(comm.size) rank(s), writing \(outDir)")
            }
            try loop.run()
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
