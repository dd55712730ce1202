import Foundation
import SafeTensors
import VAEASConfig
import VAEASCore
import VAEASData
import VAEASDistributed
import VAEASEvaluation

/// A checkpoint and the data it is measured on: what `eval`, `estimate` and
/// `reconstruct` load (the CLI's `CheckpointData` options are these fields).
///
/// Where the data is looked for when `dataDir` is nil: the `data.dir`
/// recorded in the `config.yaml` beside the checkpoint (the run's own), then
/// $VAEAS_DATA_DIR, then the dataset's standard location. With `dataDir`, only there.
public struct CheckpointInput: Sendable {
    /// `model.safetensors` written by `train`.
    public var checkpoint: String
    public var dataDir: String?
    /// The dataset (nil: the one the checkpoint was trained on).
    public var dataset: String?
    /// nil: the training binarization (dynamic draws one fixed sample).
    public var binarize: Binarization?
    /// N examples spread over the split, every ⌊n/N⌋-th from the first (0 = all).
    public var limit = 0
    /// With the train split: the whole split, not the data.limit samples the checkpoint was trained on.
    public var wholeSplit = false
    /// Seed of the evaluation noise.
    public var seed: UInt32 = 0

    public init(checkpoint: String, dataDir: String? = nil, dataset: String? = nil, binarize: Binarization? = nil,
                limit: Int = 0, wholeSplit: Bool = false, seed: UInt32 = 0) {
        self.checkpoint = checkpoint; self.dataDir = dataDir; self.dataset = dataset; self.binarize = binarize
        self.limit = limit; self.wholeSplit = wholeSplit; self.seed = seed
    }

    /// No place to look for the data (no --data-dir, no recorded data.dir, no $VAEAS_DATA_DIR, no standard location).
    public struct NoDataDirectory: Error, CustomStringConvertible {
        public let dataset: String
        public let checkpoint: String
        public var description: String {
            "no data directory for '\(dataset)': pass --data-dir, or set VAEAS_DATA_DIR "
                + "(no config.yaml with a data.dir beside \(checkpoint))"
        }
    }

    /// The places searched for `dataset`, in order.
    public static func locations(dataDir: String?, checkpoint: String, dataset: String) -> [DataLocation] {
        let runDirectory = (checkpoint as NSString).deletingLastPathComponent
        let configPath = runDirectory.isEmpty ? "config.yaml" : runDirectory + "/config.yaml"
        var recorded: DataLocation?
        if dataDir == nil, FileManager.default.fileExists(atPath: configPath),
           let run = try? TrainConfig.load(path: configPath), !run.data.dir.isEmpty {
            recorded = DataLocation(run.data.dir, origin: "data.dir in \(configPath)")
        }
        return DataLocation.searchOrder(explicit: dataDir.map { DataLocation($0, origin: "--data-dir") },
                                        recorded: recorded, dataset: dataset)
    }

    /// One split of `dataset` from the first location that holds it, and that location.
    public static func loadSplit(dataset: String, split: String, dataDir: String?, checkpoint: String) throws
        -> (dataset: Dataset, location: DataLocation) {
        let places = locations(dataDir: dataDir, checkpoint: checkpoint, dataset: dataset)
        guard !places.isEmpty else { throw NoDataDirectory(dataset: dataset, checkpoint: checkpoint) }
        return try DatasetCatalog.load(name: dataset, split: split, from: places)
    }

    /// MI, MD and SC of the checkpoint's classifier over its training set (nil without one, or without data).
    public func classifierSummary(file: SafeTensorsFile, comm: Communicator, batch: Int) throws -> [(String, Double)]? {
        guard try CheckpointMetadata(file).model.classifier != nil else { return nil }
        let name = dataset ?? CheckpointMetadata.datasetName(file.metadata)
        let places = Self.locations(dataDir: dataDir, checkpoint: checkpoint, dataset: name)
        guard !places.isEmpty else { return nil }
        let full = try DatasetCatalog.load(name: name, split: "train", from: places).dataset
        // The training set as trained on (its labels are per sample of it).
        let train = try trainedOn(full, file: file).dataset
        let pass = try Checkpoint.forwardPass(for: file, train: train, comm: comm, batch: batch)
        return pass.trainingSetSummary().filter { ["kl", "mi", "md", "sc", "mi_md_minus_kl", "ce_minus_h"].contains($0.0) }
    }

    /// The training split as the checkpoint's run saw it: the data.limit
    /// samples recorded in its metadata (data.subset, data.subset_seed), or
    /// the whole split (no subset recorded, or `wholeSplit`); and a phrase
    /// saying which.
    public func trainedOn(_ full: Dataset, file: SafeTensorsFile) throws -> (dataset: Dataset, description: String) {
        let meta = try CheckpointMetadata(entries: file.metadata, path: file.path)
        guard !wholeSplit, let subset = meta.trainedOnSubset, subset.limit < full.count else {
            return (full, "all \(full.count) examples of \(full.split)")
        }
        return (subset.apply(to: full), subset.describe(fullCount: full.count, split: full.split))
    }

    /// Results that came out NaN or ±Inf are an error naming them, not `null` in
    /// the JSON with exit status 0. (Non-finite weights are refused when the
    /// checkpoint is loaded; this catches finite weights that overflow float32.)
    public func requireFinite(_ results: [(String, Double)], on split: String) throws {
        let bad = results.filter { !$0.1.isFinite }
        guard !bad.isEmpty else { return }
        throw CheckpointError(path: checkpoint, message: "results on the \(split) split are not finite ("
            + bad.map { "\($0.0) = \($0.1)" }.joined(separator: ", ") + "): the checkpoint's parameters make "
            + "the computation overflow float32, so there is nothing meaningful to report")
    }

    /// What was loaded, for the output: the data's directory and where it came
    /// from, and which examples (`limit`).
    public struct Source: Sendable {
        public let name: String
        public let location: DataLocation
        public let subset: String
        /// The line printed before the results.
        public var line: String { "data: \(name) from \(location); \(subset)" }
    }

    /// The VAE's parameters and shape, the split as a feed (with `limit`, N
    /// examples spread over it), and where the data came from.
    public func load(split: String) throws -> (store: ParameterStore, shape: VAEShape, feed: DataFeed, file: SafeTensorsFile, source: Source) {
        let file = try SafeTensorsFile.load(path: checkpoint)
        let vae = try Checkpoint.vae(from: file, capacity: 1)
        let shape = vae.shape
        let name = dataset ?? CheckpointMetadata.datasetName(file.metadata)
        let (loaded, location) = try Self.loadSplit(dataset: name, split: split, dataDir: dataDir, checkpoint: checkpoint)
        var all = loaded
        var subset: String
        if split == "train" {
            let (d, what) = try trainedOn(loaded, file: file)
            all = d
            subset = what
            if limit > 0 && limit < d.count {
                let step = d.count / limit
                subset = "\(limit) examples, every \(Dataset.ordinal(step)) of " + what
            }
        } else {
            subset = all.spread(limit).description
        }
        let data = all.spread(limit).dataset
        guard data.dimension == shape.input else {
            throw CheckpointError(path: checkpoint, message: "input_dim \(shape.input) does not match \(name)/\(split) images of \(data.dimension) pixels")
        }
        let bin = try binarize ?? CheckpointMetadata(file).binarize
        return (vae.store, shape, DataFeed(dataset: data, binarization: bin, seed: seed, evaluation: true), file,
                Source(name: name, location: location, subset: subset))
    }
}
