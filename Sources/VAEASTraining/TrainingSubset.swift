import VAEASConfig
import VAEASData

/// Which samples of the training split a run trains on (`data.limit`,
/// `data.subset`, `data.subset_seed`), recorded in the checkpoint so that
/// `eval --split train` and `estimate` measure the model on the same samples
/// (the reduced-N experiments: a model trained on 2000 images is measured on
/// those 2000, and S > N is refused).
public struct TrainingSubset: Sendable, Equatable, Codable {
    /// Samples kept (0 = the whole split).
    public var limit: Int
    public var kind: SubsetKind
    public var seed: Int

    public init(limit: Int, kind: SubsetKind, seed: Int) {
        self.limit = limit; self.kind = kind; self.seed = seed
    }

    public init(_ d: DataConfig) { self.init(limit: d.limit, kind: d.subset, seed: d.subsetSeed) }

    /// The samples of `full` this subset keeps, in file order.
    public func apply(to full: Dataset) -> Dataset {
        guard limit > 0, limit < full.count else { return full }
        switch kind {
        case .first: return full.prefix(limit)
        case .random: return full.randomSample(limit, seed: UInt64(seed)).dataset
        }
    }

    /// For output: "2000 of train (50000), seeded sample (data.subset_seed 0)".
    public func describe(fullCount: Int, split: String = "train") -> String {
        guard limit > 0, limit < fullCount else { return "all \(fullCount) examples of \(split)" }
        switch kind {
        case .first: return "the first \(limit) of \(split) (\(fullCount)), as trained on"
        case .random:
            return "the \(limit) of \(split) (\(fullCount)) trained on: a seeded sample, data.subset_seed \(seed)"
        }
    }
}
