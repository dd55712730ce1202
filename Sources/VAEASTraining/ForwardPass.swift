import VAEASCore
import VAEASDistributed

/// The model's forward pass over global batches with the training step's own
/// inputs (binarized x and noise ε keyed by sample index and epoch, so any
/// rank count sees the same ones), and no optimizer: what the step's forward
/// half uses, what `eval` measures a finished run's classifier with
/// (`Checkpoint.forwardPass(for:…)`), and what finite differences are taken of.
public final class ForwardPass {
    public let model: VAEASModel
    public let feed: DataFeed
    public let noise: NoiseSource
    private let arena = Arena()
    /// This rank's inputs: x (capacity × input) and ε (capacity·L × D).
    let x: UnsafeMutablePointer<Float>
    let eps: UnsafeMutablePointer<Float>

    public init(model: VAEASModel, feed: DataFeed) {
        self.model = model
        self.feed = feed
        noise = NoiseSource(seed: model.spec.seed, latent: model.spec.shape.latent, samples: model.samples)
        x = arena.floats(model.localCapacity * feed.dimension)
        eps = arena.floats(model.localCapacity * model.samples * model.spec.shape.latent)
    }

    var comm: Communicator { model.comm }

    /// This rank's contiguous slice of the global batch.
    func shard(_ batch: UnsafeBufferPointer<Int32>) -> UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(rebasing: batch[BlockPartition(total: batch.count, parts: comm.size).range(comm.rank)])
    }

    /// x and ε of this rank's `local` samples for `epoch`.
    func fill(_ local: UnsafeBufferPointer<Int32>, epoch: Int) {
        feed.fill(x, indices: local, epoch: epoch)
        noise.fill(eps, indices: local, epoch: epoch)
    }

    /// Forward-only sums over `batch` (recon, KL, and the classifier's CE and
    /// Ĥ), reduced over ranks, with the same inputs the step uses for the
    /// same (batch, epoch). Collective: every rank calls it with the same batch.
    public func stats(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> StepStats {
        let local = shard(batch)
        fill(local, epoch: epoch)
        var stats = model.forward(x: x, eps: eps, n: local.count, batch: batch, gradScale: nil)
        let s = comm.sum([stats.recon, stats.kl])
        stats.recon = s[0]; stats.kl = s[1]; stats.count = batch.count
        return stats
    }

    /// L_φθ and the classifier's mean CE on `batch`, forward only: what finite
    /// differences of the step's gradients are taken against.
    public func losses(_ batch: UnsafeBufferPointer<Int32>, epoch: Int) -> (objective: Double, classifierCE: Double) {
        model.objective.value(stats(batch, epoch: epoch))
    }

    /// The reported terms over the whole training set in order, forward only,
    /// in batches of the model's batch capacity (the classifier's estimates as
    /// `metrics.jsonl` reports them, but for fixed parameters).
    public func trainingSetSummary() -> [(String, Double)] {
        let n = feed.count, b = model.batchCapacity
        let all = (0..<Int32(n)).map { $0 }
        var total = StepStats()
        all.withUnsafeBufferPointer { p in
            var lo = 0
            while lo < n {
                let hi = min(lo + b, n)
                total.add(stats(UnsafeBufferPointer(rebasing: p[lo..<hi]), epoch: 0))
                lo = hi
            }
        }
        return model.objective.summary(total)
    }
}
