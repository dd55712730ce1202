import ArgumentParser
import Foundation
import Logging
import VAEAS
import VAEASConfig
import VAEASData

/// Process-wide set-up shared by the subcommands: MPI, BLAS threads, logging,
/// and turning errors into one clear message and a non-zero exit.
enum Runtime {
    /// Runs `body` with an MPI communicator. Errors are printed once (by rank
    /// 0, or by the failing rank when only it knows) and exit with status 1.
    static func withCommunicator(_ body: (Communicator) throws -> Void) throws {
        let comm: MPICommunicator
        do { comm = try MPICommunicator() } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        configureBLASThreads()
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = comm.rank == 0 ? .info : .error
            return h
        }
        do {
            try body(comm)
        } catch let e as PeerFailure {
            _ = e  // rank 0 printed the cause
            comm.finalize()
            throw ExitCode(1)
        } catch {
            if comm.rank == 0 {
                fflush(stdout)
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            }
            comm.finalize()
            throw ExitCode(1)
        }
        comm.finalize()
    }

    /// P ranks on C cores already fill the cores; OpenBLAS threads beyond
    /// C / (ranks on this node) would oversubscribe them. An explicit
    /// OPENBLAS_NUM_THREADS wins.
    static func configureBLASThreads() {
        let env = ProcessInfo.processInfo.environment
        if env["OPENBLAS_NUM_THREADS"] != nil { return }
        let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? env["SLURM_NTASKS_PER_NODE"] ?? "1") ?? 1
        BLAS.threads = max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local))
    }

    /// Config file (or the embedded default) with `--set` overrides applied in order.
    static func loadConfig(path: String?, overrides: [String], dataDir: String?) throws -> TrainConfig {
        var config = try TrainConfig.load(path: path)
        for o in overrides { try config.set(o) }
        if let dataDir { try config.set("data.dir", to: .string(dataDir)) }
        try config.validate()
        return config
    }

    /// data.dir, else $VAEAS_DATA_DIR, else the system's Fashion-MNIST for fashion-mnist.
    static func dataDirectory(_ config: TrainConfig) throws -> String {
        if !config.data.dir.isEmpty { return config.data.dir }
        if let env = ProcessInfo.processInfo.environment["VAEAS_DATA_DIR"], !env.isEmpty { return env }
        if config.data.name == "fashion-mnist" { return "/usr/share/datasets/fashion-mnist" }
        throw ConfigError(key: "data.dir", source: nil, line: nil,
                          message: "no data directory for '\(config.data.name)': set data.dir, --data-dir or VAEAS_DATA_DIR")
    }

    /// Training split (limited to data.limit) and, when evaluation is on, the test split.
    static func loadData(_ config: TrainConfig) throws -> (train: Dataset, test: Dataset?) {
        let dir = try dataDirectory(config)
        let train = try DatasetCatalog.load(name: config.data.name, split: "train", directory: dir).prefix(config.data.limit)
        let test = config.eval.every > 0
            ? try DatasetCatalog.load(name: config.data.name, split: config.data.testSplit, directory: dir) : nil
        return (train, test)
    }
}
