import ArgumentParser
import Foundation
import SafeTensors
import VAEAS
import VAEASData

/// What `eval` and `estimate` share: a checkpoint and the data it is measured
/// on, as options; the loading itself is the library's `CheckpointInput`.
struct CheckpointData: ParsableArguments {
    @Option(name: .long, help: "model.safetensors written by `train`.")
    var checkpoint: String

    @Option(name: .long, help: """
        Directory of the dataset's IDX files (default: data.dir in the config.yaml beside the checkpoint, \
        then $VAEAS_DATA_DIR, then the dataset's standard location).
        """)
    var dataDir: String?

    @Option(name: .long, help: "Dataset name (default: the one the checkpoint was trained on).")
    var dataset: String?

    @Option(name: .long, help: "Binarization, static or dynamic (default: the training one; dynamic draws one fixed sample).")
    var binarize: Binarization?

    @Option(name: .long, help: """
        Use N examples spread over the split (over the checkpoint's training subset for the train split), \
        every ⌊n/N⌋-th from the first (0 = all).
        """)
    var limit = 0

    @Flag(name: .long, help: """
        With the train split: use the whole split, not the data.limit samples the checkpoint was trained on \
        (recorded in its metadata; the default).
        """)
    var wholeSplit = false

    @Option(name: .long, help: "Seed of the evaluation noise.")
    var seed: UInt32 = 0

    func validate() throws {
        guard limit >= 0 else { throw ValidationError("--limit must be ≥ 0, got \(limit)") }
    }

    var input: CheckpointInput {
        CheckpointInput(checkpoint: checkpoint, dataDir: dataDir, dataset: dataset, binarize: binarize, limit: limit,
                        wholeSplit: wholeSplit, seed: seed)
    }

    /// `CheckpointInput.load`, with no data directory a usage error (exit 64).
    func load(split: String) throws -> (store: ParameterStore, shape: VAEShape, feed: DataFeed, file: SafeTensorsFile,
                                        source: CheckpointInput.Source) {
        do { return try input.load(split: split) } catch let e as CheckpointInput.NoDataDirectory {
            throw ValidationError(e.description)
        }
    }
    func classifierSummary(file: SafeTensorsFile, comm: Communicator, batch: Int) throws -> [(String, Double)]? {
        try input.classifierSummary(file: file, comm: comm, batch: batch)
    }
    func requireFinite(_ results: [(String, Double)], on split: String) throws { try input.requireFinite(results, on: split) }
}

extension CheckpointInput.Source {
    func record(into j: inout JSONRecord) {
        j.set("data_dir", location.directory); j.set("data_dir_origin", location.origin); j.set("subset", subset)
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Importance-weighted NLL, ELBO, recon, KL and active units of a checkpoint on a split.",
        discussion: """
        NLL is Burda et al.'s importance-weighted estimate with K samples per example, computed in chunks so that
        memory stays bounded for any K. AU counts latent dims with Var_x(μ_d(x)) ≥ the threshold.
        Examples are sharded over MPI ranks; the noise is keyed by example, so any rank count gives the same result
        up to float rounding. Prints a table and, last, one JSON line.

        Example:
          mpirun -n 2 vaeas-dist eval --checkpoint runs/demo/model.safetensors --iw-samples 1000 --limit 2000
        """)

    @OptionGroup var source: CheckpointData

    @Option(name: .long, help: "Split to evaluate.")
    var split = "test"

    @Option(name: .long, help: "Importance samples K per example (the paper uses 4096).")
    var iwSamples = 4096

    @Option(name: .long, help: "Active-unit threshold on Var_x(μ_d(x)).")
    var auThreshold = 0.01

    @Flag(name: .long, help: "Print only the JSON line.")
    var json = false

    @Flag(name: .long, help: "Skip the classifier's MI/MD/SC over the training set (VAE-AS checkpoints).")
    var noClassifier = false

    func validate() throws {
        guard iwSamples >= 1 else { throw ValidationError("--iw-samples must be ≥ 1, got \(iwSamples)") }
        guard auThreshold >= 0, auThreshold.isFinite else { throw ValidationError("--au-threshold must be a finite number ≥ 0") }
    }

    func run() throws {
        try Runtime.withCommunicator { comm in
            let (store, shape, feed, file, data) = try source.load(split: split)
            let t0 = Date()
            let r = Evaluator.likelihood(parameters: store, shape: shape, feed: feed, comm: comm, iwSamples: iwSamples,
                                         seed: source.seed, auThreshold: auThreshold)
            let classifier = noClassifier ? nil : try source.classifierSummary(file: file, comm: comm, batch: 128)
            // Every rank holds the same reduced results, so every rank stops here together.
            try source.requireFinite([("nll", r.nll), ("elbo", r.elbo), ("recon", r.recon), ("kl", r.kl)]
                                     + (classifier ?? []), on: split)
            guard comm.isRoot else { return }
            var j = JSONRecord()
            j.set("checkpoint", source.checkpoint); j.set("split", split); j.set("examples", r.count); j.set("ranks", comm.size)
            data.record(into: &j)
            j.set("iw_samples", r.iwSamples); j.set("nll", r.nll); j.set("elbo", r.elbo); j.set("recon", r.recon); j.set("kl", r.kl)
            j.set("active_units", r.activeUnits); j.set("au_threshold", r.auThreshold)
            for (k, v) in classifier ?? [] where k != "kl" { j.set(k, v) }
            if let kl = classifier?.first(where: { $0.0 == "kl" })?.1 { j.set("kl_train", kl) }
            if classifier != nil, let md = try? CheckpointMetadata(file).model.classifier?.mdEstimator { j.set("md_estimator", md.rawValue) }
            j.set("seconds", Date().timeIntervalSince(t0))
            if !json {
                print(data.line)
                if let c = classifier {
                    let d = Dictionary(uniqueKeysWithValues: c)
                    print(String(format: "train set, classifier: MI %.3f  MD %.3f  SC %.3f  (KL_train %.3f; MI + MD − KL %.3f, CE − Ĥ %.3f; MD by %@)",
                                 d["mi"] ?? .nan, d["md"] ?? .nan, d["sc"] ?? .nan, d["kl"] ?? .nan, d["mi_md_minus_kl"] ?? .nan,
                                 d["ce_minus_h"] ?? .nan, (try? CheckpointMetadata(file).model.classifier?.mdEstimator.rawValue) ?? "?"))
                }
                print(String(format: """
                    split %@ (%d examples, %d rank(s)), K = %d
                      NLL (IW)   %.3f nats
                      -ELBO      %.3f   (recon %.3f + KL %.3f)
                      AU         %d of %d (Var μ_d ≥ %g)
                    """, split, r.count, comm.size, r.iwSamples, r.nll, -r.elbo, r.recon, r.kl, r.activeUnits,
                    r.muVariance.count, r.auThreshold))
            }
            print(j.json)
        }
    }
}

struct Estimate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Monte Carlo MI and marginal KL of the aggregate posterior at several sample counts S (paper Figures 2, 3).",
        discussion: """
        Hoffman & Johnson's estimate: S training examples, one z_j ~ q(z|x_j) each, log q̂(z_j) = logsumexp_k log q(z_j|x_k) − log S;
        MI = mean[log q(z_j|x_j) − log q̂(z_j)], MD = mean[log q̂(z_j) − log p(z_j)], and MI + MD against the mean KL.
        Matrix products in Double, rows sharded over ranks, memory O(128·S).

        Example:
          mpirun -n 2 vaeas-dist estimate --checkpoint runs/demo/model.safetensors --samples 100,1000,10000
        """)

    @OptionGroup var source: CheckpointData

    @Option(name: .long, help: "Split the examples come from.")
    var split = "train"

    @Option(name: .long, help: ArgumentHelp("""
        Sample counts S, comma-separated, each at most the N examples used (default: those of \
        100,500,1000,5000,10000,50000 below N, then N).
        """, valueName: "S,S,…"))
    var samples: String?

    static let defaultCounts = [100, 500, 1000, 5000, 10000, 50000]

    @Flag(name: .long, help: "Print only JSON lines.")
    var json = false

    func validate() throws {
        for s in (samples ?? "1").split(separator: ",", omittingEmptySubsequences: false) where Int(s) == nil || Int(s)! < 1 {
            throw ValidationError("--samples: '\(s)' is not a sample count ≥ 1")
        }
    }

    func run() throws {
        try Runtime.withCommunicator { comm in
            let (store, shape, feed, file, data) = try source.load(split: split)
            if comm.isRoot && !json {
                print(data.line + "; each S: a seeded random subset (seed \(source.seed)) of these \(feed.count)")
            }
            let n = feed.count
            let counts = samples.map { $0.split(separator: ",").map { Int($0)! } }
                ?? Self.defaultCounts.filter { $0 < n } + [n]
            // The aggregate posterior is a mixture over the N examples used: S > N would repeat examples.
            if let too = counts.first(where: { $0 > n }) {
                throw ValidationError("--samples \(too) exceeds the \(n) examples used (\(data.subset)); "
                                      + "S must be at most N")
            }
            if let c = try source.classifierSummary(file: file, comm: comm, batch: 128), comm.isRoot {
                let d = Dictionary(uniqueKeysWithValues: c)
                var j = JSONRecord()
                j.set("classifier_mi", d["mi"] ?? .nan); j.set("classifier_md", d["md"] ?? .nan)
                j.set("classifier_sc", d["sc"] ?? .nan); j.set("kl_train", d["kl"] ?? .nan)
                if !json { print(String(format: "classifier over the training set: Î %.3f  MD̂ %.3f  (mean KL %.3f)", d["mi"] ?? .nan, d["md"] ?? .nan, d["kl"] ?? .nan)) }
                print(j.json)
            }
            if comm.isRoot && !json { print("      S        MI       MD    MI+MD  mean KL") }
            for s in counts {
                let t0 = Date()
                let r = Evaluator.monteCarloMI(parameters: store, shape: shape, feed: feed, comm: comm, samples: s, seed: source.seed)
                try source.requireFinite([("mi", r.mi), ("md", r.md), ("mean_kl", r.meanKL)], on: split)
                guard comm.isRoot else { continue }
                var j = JSONRecord()
                j.set("samples", s); j.set("mi", r.mi); j.set("md", r.md); j.set("mi_plus_md", r.mi + r.md)
                j.set("mean_kl", r.meanKL); j.set("ranks", comm.size); j.set("seconds", Date().timeIntervalSince(t0))
                data.record(into: &j)
                if json { print(j.json) } else {
                    print(String(format: "%7d  %8.3f %8.3f %8.3f %8.3f", s, r.mi, r.md, r.mi + r.md, r.meanKL))
                    print(j.json)
                }
            }
        }
    }
}
