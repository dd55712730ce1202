import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig
import VAEASData

/// Process-wide set-up shared by the subcommands: MPI, BLAS threads, logging,
/// and turning errors into one clear message and a non-zero exit.
enum Runtime {
    /// Runs `body` with an MPI communicator. Errors end the job with status 1
    /// and are printed once:
    /// - a `CollectiveError` (every rank raised it together): by the rank that
    ///   failed (`AgreedFailure`, with its rank and host when it is not rank 0)
    ///   or by rank 0; every rank then finalizes normally;
    /// - a stop on a signal (`PreemptedError`): rank 0 prints where to resume;
    ///   status `Preemption.exitStatus` (75);
    /// - any other error, which only this rank knows of: printed with the rank
    ///   and host, then MPI_Abort ends every rank (no rank waits forever in a
    ///   collective the failed one will never reach).
    ///
    /// Without a launcher (a plain `vaeas-dist …`, see `LauncherEnvironment.isLaunched`) the
    /// process is one rank and runs on `LocalCommunicator`, without MPI: MPI_Init's
    /// singleton start-up (Open MPI forks a PMIx server) costs ~2.5 s on this
    /// project's machines and changes nothing for one rank.
    static func withCommunicator(_ body: (Communicator) throws -> Void) throws {
        let mpi: MPICommunicator?
        if LauncherEnvironment().isLaunched {
            do { mpi = try MPICommunicator() } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode(1)
            }
        } else {
            mpi = nil
        }
        let comm: Communicator = mpi ?? LocalCommunicator()
        let blas: BLASLibrary
        do { blas = try BLAS.load() } catch {
            // Every rank fails the same way (same environment), so none waits for another.
            if comm.isRoot { FileHandle.standardError.write(Data("error: \(error)\n".utf8)) }
            mpi?.finalize()
            throw ExitCode(1)
        }
        configureBLASThreads()
        if comm.isRoot {
            // Never a generic kernel in silence (docs/PERFORMANCE.md "Which BLAS").
            for line in [blas.note.map { "note: " + $0 }, blas.genericKernelWarning(cpu: CPUInfo.current)].compactMap({ $0 }) {
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        }
        func report(_ text: String) {
            fflush(stdout)
            let who = comm.size > 1 && comm.rank != 0 ? "rank \(comm.rank) of \(comm.size) (\(hostName())): " : ""
            FileHandle.standardError.write(Data("error: \(who)\(text)\n".utf8))
        }
        do {
            try body(comm)
        } catch let e as PreemptedError {
            if comm.isRoot { print(e); fflush(stdout) }
            mpi?.finalize()
            throw ExitCode(Preemption.exitStatus)
        } catch is PeerFailure {
            // The failing rank printed the cause.
            mpi?.finalize()
            throw ExitCode(1)
        } catch let e as AgreedFailure {
            report("\(e.underlying)")
            mpi?.finalize()
            throw ExitCode(1)
        } catch let e as CollectiveError {
            if comm.isRoot { report("\(e)") }
            mpi?.finalize()
            throw ExitCode(1)
        } catch {
            report("\(error)")
            if let mpi, mpi.size > 1 {
                FileHandle.standardError.write(Data("error: rank \(comm.rank) ends the job (MPI_Abort): the other ranks cannot know of this error\n".utf8))
                mpi.abort(code: 1)
            }
            mpi?.finalize()
            throw ExitCode(1)
        }
        mpi?.finalize()
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(cString: buffer)
    }

    /// P ranks on C cores already fill the cores; BLAS threads beyond a
    /// rank's share would oversubscribe them. The share comes from the CPU
    /// affinity mask when it is narrower than the machine (taskset, srun
    /// --cpu-bind, mpirun --bind-to), else SLURM_CPUS_PER_TASK, else cores /
    /// ranks on this node (`BLASThreadPlan.decide`). An explicit
    /// OPENBLAS_NUM_THREADS wins.
    static func configureBLASThreads() {
        let plan = BLASThreadPlan.decide(environment: ProcessInfo.processInfo.environment,
                                         affinityCount: BLASThreadPlan.affinityCount(),
                                         cores: ProcessInfo.processInfo.activeProcessorCount)
        if let threads = plan.threads { BLAS.threads = threads }
    }

    /// Config file (or the embedded default) with `--set` overrides applied in order.
    static func loadConfig(path: String?, overrides: [String], dataDir: String?) throws -> TrainConfig {
        var config = try TrainConfig.load(path: path)
        for o in overrides { try config.set(o) }
        if let dataDir { try config.set("data.dir", to: .string(dataDir)) }
        try config.validate()
        return config
    }

    /// A relative `data.dir` made absolute against the working directory (every
    /// rank's: mpirun and srun start ranks there), so that the run's config.yaml
    /// and checkpoints still find the data when resumed from elsewhere.
    static func absoluteDataDir(_ config: inout TrainConfig) throws {
        let d = config.data.dir
        guard !d.isEmpty, !d.hasPrefix("/") else { return }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        try config.set("data.dir", to: .string(URL(fileURLWithPath: d, relativeTo: cwd).standardizedFileURL.path))
    }

    /// Where to look for the data, in order: data.dir (or --data-dir) alone
    /// when set; else $VAEAS_DATA_DIR, then the dataset's standard location
    /// (Fashion-MNIST's /usr/share/datasets/fashion-mnist), so that a
    /// VAEAS_DATA_DIR holding the other datasets does not hide it.
    static func dataLocations(_ config: TrainConfig) throws -> [DataLocation] {
        let explicit = config.data.dir.isEmpty ? nil : DataLocation(config.data.dir, origin: "data.dir")
        let locations = DataLocation.searchOrder(explicit: explicit, dataset: config.data.name)
        guard !locations.isEmpty else {
            throw ConfigError(key: "data.dir", source: nil, line: nil,
                              message: "no data directory for '\(config.data.name)': set data.dir, --data-dir or VAEAS_DATA_DIR")
        }
        return locations
    }

    /// Every rank's copy of the data has the same content (collective): a node
    /// whose local copy differs would train another model on its shard.
    static func checkSameData(_ identity: RunIdentity, comm: Communicator) throws {
        let mine = identity.data.map { "\($0.split) \($0.crc32) \($0.samples)" }.joined(separator: "; ")
        let all = comm.allgather(mine)
        guard let odd = all.firstIndex(where: { $0 != all[0] }) else { return }
        throw DataError(path: identity.data.first?.file ?? "data",
                        message: "rank \(odd) read data with other content than rank 0 (rank 0: \(all[0]); rank \(odd): \(all[odd])); "
                            + "every rank must read the same files")
    }

    /// Where the last `loadData` found the data, for a header to print.
    nonisolated(unsafe) static var dataLocation: DataLocation?

    /// Training split (its data.limit samples chosen by data.subset) and, when evaluation is on, the
    /// test split, both from the first location that holds the dataset. When
    /// that is not the first place looked in, rank 0 says so on stderr.
    static func loadData(_ config: TrainConfig) throws -> (train: Dataset, test: Dataset?) {
        let locations = try dataLocations(config)
        let (full, location) = try DatasetCatalog.load(name: config.data.name, split: "train", from: locations)
        dataLocation = location
        // Before the communicator's rank is known here: the launcher's (mpirun, srun, PMIx), else 0.
        if location != locations[0] && LauncherEnvironment().rank == 0 {
            FileHandle.standardError.write(Data("note: \(config.data.name) is not in \(locations[0]); using \(location)\n".utf8))
        }
        let train = TrainingSubset(config.data).apply(to: full)
        let test = config.eval.every > 0
            ? try DatasetCatalog.load(name: config.data.name, split: config.data.testSplit, directory: location.directory) : nil
        return (train, test)
    }
}
