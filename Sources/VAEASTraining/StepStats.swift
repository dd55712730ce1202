import VAEASConfig
import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import Dispatch

/// Sums of per-sample terms over the global batch (identical on every rank).
public struct StepStats: Sendable {
    public var recon: Double = 0
    public var kl: Double = 0
    public var count: Int = 0
    /// VAE-AS: Σ CE and Σ Ĥ over the classifier's global rows (B·L per step).
    public var crossEntropy: Double = 0
    public var hHat: Double = 0
    public var rows: Int = 0

    public init() {}

    public mutating func add(_ o: StepStats) {
        recon += o.recon; kl += o.kl; count += o.count
        crossEntropy += o.crossEntropy; hHat += o.hHat; rows += o.rows
    }
}

/// Accumulated seconds per phase of the training step on this rank.
public struct PhaseTimes: Sendable {
    /// `forward`/`backward`: encoder and decoder; `classifier`: the VAE-AS
    /// classifier's compute (hidden layers and the partitioned output layer);
    /// `communication`: every collective, the classifier's included.
    public var data = 0.0, forward = 0.0, backward = 0.0, classifier = 0.0, communication = 0.0, optimizer = 0.0
    /// The part of `communication` spent in the classifier's collectives.
    public var classifierCommunication = 0.0
    /// The output layer's optimizer update (dense Adam for the full softmax, sparse for the tree).
    public var classifierOptimizer = 0.0
    /// The replicated gradients' reduction: time this rank spent in its calls
    /// (exposed: not hidden behind compute; part of `communication`), and time
    /// from each reduction's start to its observed completion (in flight; the
    /// same as exposed for the blocking allreduce). Bytes: the reduced buffer's size.
    public var gradientExposed = 0.0, gradientInFlight = 0.0
    public var gradientBytes = 0
    public init() {}
    public var all: [(String, Double)] {
        [("data", data), ("forward", forward), ("backward", backward), ("classifier", classifier),
         ("communication", communication), ("optimizer", optimizer), ("classifier_optimizer", classifierOptimizer)]
    }
}

/// Seconds since the last lap.
struct PhaseClock {
    var last = DispatchTime.now().uptimeNanoseconds
    mutating func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) * 1e-9
    }
}

/// A run stopped because a loss or gradient was NaN or infinite. The
/// parameters were not updated with it; the last checkpoint stays as it was.
public struct NonFiniteError: CollectiveError, CustomStringConvertible {
    public let epoch: Int
    public let step: Int
    public let what: String
    public var description: String {
        "non-finite \(what) at epoch \(epoch), step \(step): training stopped before applying it; "
            + "model.safetensors, if written, holds the last completed checkpoint (try a lower train.lr)"
    }
}

public struct ReplicaDivergenceError: CollectiveError, CustomStringConvertible {
    public let epoch: Int
    public var description: String { "replicated parameters differ between ranks after epoch \(epoch)" }
}
