import Foundation
import SafeTensors
import VAEAS
import VAEASConfig
import VAEASData

/// What `train` tells the person running it: one header, one summary, the
/// `--dry-run` report, and `run.jsonl` (one line per start: command line,
/// version, commit, ranks, hosts, BLAS threads per rank, the BLAS library, its
/// version and kernel per rank, the CPU, BLAS variables the environment sets,
/// the run's identity, and on a resume the config changes from the checkpoint's).
enum RunReport {
    /// One line per start of the run (a new run or a resume), appended by rank 0.
    static func recordStart(in directory: String, config: TrainConfig, loop: TrainingLoop, comm: Communicator,
                            resumedFrom: String? = nil, changes: [TrainConfig.Change]? = nil) throws {
        let hosts = comm.allgather(Runtime.hostName())
        let threads = comm.allgather("\(BLAS.threads)")
        // Per rank: a heterogeneous allocation can pick other kernels on other nodes.
        let kernels = comm.allgather(BLAS.library.kernel)
        _ = try comm.rootOnly {
            var r = JSONRecord()
            r.set("started", ISO8601DateFormatter().string(from: Date()))
            r.set("command", CommandLine.arguments.joined(separator: " "))
            r.set("version", BuildInfo.version)
            r.set("commit", BuildInfo.commit ?? "unknown")
            r.set("ranks", comm.size)
            r.set("hosts", hosts.joined(separator: ","))
            r.set("blas_threads_per_rank", threads.joined(separator: ","))
            let blas = BLAS.library
            r.set("blas", "\(blas.vendor.rawValue) \(blas.version), kernel \(blas.kernel)")
            r.set("blas_kernel_per_rank", kernels.joined(separator: ","))
            r.setPlatform()
            if let resumedFrom { r.set("resumed_from", resumedFrom) }
            // What --resume checks a checkpoint against, and what it was allowed to change.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            r.set("identity", json: String(decoding: try encoder.encode(loop.identity), as: UTF8.self))
            if let changes { r.set("config_changes", json: ResumePolicy.json(changes)) }
            let path = directory + "/run.jsonl"
            let line = Data((r.json + "\n").utf8)
            if let h = FileHandle(forWritingAtPath: path) {
                defer { try? h.close() }
                try h.seekToEnd()
                try h.write(contentsOf: line)
            } else {
                guard FileManager.default.createFile(atPath: path, contents: line) else {
                    throw RunOutputError("\(path): cannot be written (\(String(cString: strerror(errno))))")
                }
            }
        }
    }

    static func header(config: TrainConfig, step: DataParallelStep, directory: String) -> String {
        let m = step.model, o = config.objective
        var what = o.kind == .vae ? "VAE" : "VAE-AS (α = \(o.alpha), β = \(o.beta), \(o.miEstimator.rawValue) estimator, "
            + "\(o.softmax.rawValue) softmax, V = \(m.spec.classifier?.labels ?? 0))"
        what += ", \(m.parameters.count) replicated parameters"
        return "vaeas-dist train: \(what); \(config.data.name) (\(step.feed.count) samples), \(step.comm.size) rank(s) × "
            + "\(BLAS.threads) BLAS thread(s), global batch \(config.train.batch), \(step.stepsPerEpoch) steps/epoch; writing \(directory)"
            + config.warnings.map { "\nwarning: " + $0 }.joined()
    }

    /// The last epoch's numbers in a table, and what to try next.
    static func summary(_ history: [JSONRecord], seconds: Double, directory: String, continueWith: String) -> String {
        guard let last = history.last else { return "done: \(directory) (no epoch ran)" }
        var d: [String: Double] = [:]
        for (k, v) in last.fields {
            switch v { case .double(let x): d[k] = x; case .int(let i): d[k] = Double(i); default: break }
        }
        let rates = history.compactMap { r -> Double? in
            if case .double(let x)? = r.fields.first(where: { $0.0 == "samples_per_s" })?.1 { return x }
            return nil
        }
        var rows: [(String, String)] = [("epoch", "\(Int(d["epoch"] ?? 0))"), ("step", "\(Int(d["step"] ?? 0))"),
                                        ("loss", f(d["loss"])), ("recon (NLL_train)", f(d["recon"])), ("KL", f(d["kl"]))]
        if d["mi"] != nil {
            rows += [("MI (Î)", f(d["mi"])), ("MD (MD̂)", f(d["md"])), ("SC", f(d["sc"])), ("labels V", "\(Int(d["labels"] ?? 0))")]
        }
        if let au = d["test_au"] { rows.append(("AU (test)", "\(Int(au))")) }
        if d["test_elbo"] != nil { rows.append(("test ELBO", f(d["test_elbo"]))) }
        if d["test_nll"] != nil { rows.append(("test NLL (IW)", f(d["test_nll"]))) }
        rows.append(("samples/s", rates.isEmpty ? "-" : String(format: "%.0f", rates.reduce(0, +) / Double(rates.count))))
        rows.append(("wall time", Progress.clock(seconds)))
        let width = rows.map(\.0.count).max()!
        var out = "\nsummary of \(directory):\n"
        for (k, v) in rows { out += "  " + k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v + "\n" }
        // I(x; z) ≤ E_x KL(q(z|x) ‖ p(z)), so MD̂ = KL − Î < 0 cannot be true: say so rather than report it plainly.
        if let mi = d["mi"], let kl = d["kl"], mi > kl {
            out += "  note: Î \(f(mi)) exceeds the mean KL \(f(kl)), which the true MI never does: the classifier's "
                + "estimate is not to be trusted here (typically a collapsed encoder; docs/RESULTS.md)\n"
        }
        let model = (directory + "/model.safetensors").shellQuoted
        out += """

        next:
          vaeas-dist eval --checkpoint \(model)          # IW NLL, ELBO, AU (and the classifier's MI/MD/SC)
          vaeas-dist estimate --checkpoint \(model)      # Monte Carlo MI and MD (Figures 2–3)
          vaeas-dist sample --checkpoint \(model) --out \((directory + "/samples.png").shellQuoted)
          vaeas-dist train --resume \(directory.shellQuoted) \(continueWith)   # continue
        """
        return out
    }

    /// The --set that lets `--resume` go on from where the run stopped: past
    /// `train.max_steps` when that stopped it (raising train.epochs alone would
    /// be refused), and 10 more epochs when the epochs are done.
    static func continueHint(config: TrainConfig, step: DataParallelStep) -> String {
        let t = config.train
        var sets: [String] = []
        if t.maxSteps > 0 && step.globalStep >= t.maxSteps { sets.append("train.max_steps=0") }
        if step.globalStep >= t.epochs * step.stepsPerEpoch { sets.append("train.epochs=\(t.epochs + 10)") }
        return sets.map { "--set " + $0 }.joined(separator: " ")
    }

    private static func f(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "-" }

    /// `--dry-run`: the data was loaded on every rank (and agreed on); print
    /// the run's shape and each rank's memory for the replicated parameters
    /// and the partitioned output layer, computed without allocating them.
    static func dryRun(config: TrainConfig, train: Dataset, comm: Communicator) throws {
        let spec = try ModelSpec(config: config, inputDimension: train.dimension, trainSamples: train.count)
        let shape = spec.shape, P = comm.size, t = config.train
        let table = ParameterTable.vae(shape)
            + ParameterTable.classifierHidden(latent: shape.latent, width: shape.hidden, layers: spec.classifier?.layers ?? 0)
        let replicated = table.entries.reduce(0) { $0 + ($1.inFeatures + 1) * $1.outFeatures }
        let hosts = comm.allgather(Runtime.hostName())
        let threads = comm.allgather("\(BLAS.threads)")
        guard comm.isRoot else { return }
        func mib(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
        var lines = [
            "vaeas-dist train --dry-run: the config resolves and every rank read its data",
            "  ranks              \(P) on \(Set(hosts).count) host(s): \(hosts.joined(separator: ", "))",
            "  BLAS threads       \(threads.joined(separator: ", ")) (per rank)",
            "  BLAS               \(BLAS.library.vendor.rawValue) \(BLAS.library.version), kernel \(BLAS.library.kernel) (\(BLAS.library.path))",
            "  CPU                \(CPUInfo.current.description), \(CPUInfo.current.vectorExtensions)",
            "  data               \(config.data.name): \(train.count) training samples of \(train.dimension) pixels",
            "  steps              \((train.count + t.batch - 1) / t.batch) per epoch × \(t.epochs) epochs"
                + (t.maxSteps > 0 ? " (capped at \(t.maxSteps))" : "") + ", global batch \(t.batch), L = \(t.samples)",
            t.zeroStage == 1
                ? "  replicated         \(replicated) parameters: \(mib(8 * replicated + 16 * BlockPartition(total: replicated, parts: P).maxCount)) per rank "
                    + "(values, gradients; ZeRO stage 1: Adam m and v, the reduced gradient and the allgather copy of a 1/\(P) slice)"
                : "  replicated         \(replicated) parameters: \(mib(16 * replicated)) per rank (values, gradients, Adam m and v)",
            "  gradient reduction " + (t.zeroStage == 1 ? "reduce-scatter, Adam on this rank's slice, allgather (ZeRO stage 1)"
                : t.bucketMB > 0 ? "MPI_Iallreduce of buckets of ≤ \(t.bucketMB) MiB during backward (train.bucket_mb)"
                : "one blocking allreduce of \(mib(4 * replicated)) after backward"),
        ]
        if let c = spec.classifier {
            let h = c.layers > 0 ? shape.hidden : shape.latent
            let rowsR = t.batch * t.samples
            switch c.softmax {
            case .full:
                let rows = BlockPartition(total: c.labels, parts: P).maxCount
                let bytes = PartitionedSoftmax.memoryBytes(rows: rows, width: h, globalRows: rowsR)
                lines.append("  output layer       full softmax V = \(c.labels) × h = \(h): \(rows) label rows per rank (of \(c.labels)), "
                             + "\(mib(bytes)) per rank (rows, gradients, moments, logits); a replicated layer would allreduce "
                             + "\(mib(4 * c.labels * (h + 1))) per step")
            case .tree:
                let nodes = (0..<P).map { TreePartition(labels: c.labels, ranks: P, rank: $0).nodeCount }.max() ?? 0
                let depth = TreePartition(labels: c.labels, ranks: 1, rank: 0).maxDepth
                let bytes = PartitionedTreeSoftmax.memoryBytes(nodes: nodes, width: h, globalRows: rowsR, maxDepth: depth)
                lines.append("  output layer       tree softmax, \(c.labels - 1) nodes × h = \(h): at most \(nodes) nodes per rank, "
                             + "\(mib(bytes)) per rank")
            }
        }
        lines.append("nothing was written; drop --dry-run to train")
        print(lines.joined(separator: "\n"))
    }
}

extension JSONRecord {
    /// The BLAS library (name, version, kernel, file, how it was chosen), how subnormals are handled, the
    /// CPU (model, family/model, vector extensions, nominal peak per core) and the BLAS variables the
    /// environment sets: in every `bench` JSON record and every `run.jsonl` line, so that a number always
    /// names where it ran.
    mutating func setPlatform() {
        let blas = BLAS.library, cpu = CPUInfo.current
        set("blas_library", blas.vendor.rawValue)
        set("blas_version", blas.version)
        set("blas_kernel", blas.kernel)
        set("blas_path", blas.path)
        set("blas_selection", blas.selection)
        set("subnormals", FloatingPointMode.summary)
        set("cpu_model", cpu.modelName)
        set("cpu_family_model", "\(cpu.family)/\(cpu.model)")
        set("cpu_vector_extensions", cpu.vectorExtensions)
        if let peak = cpu.peakGFLOPSPerCore { set("cpu_peak_gflops_per_core", peak) }
        for (k, v) in BLASLibrary.environmentOverrides() { set("env_" + k, v) }
    }
}
