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

/// A run stopped by `train.divergence_factor` (issue #21, defect 5): a finite
/// but exploding loss. Nothing of the diverged state was checkpointed.
public struct DivergenceError: CollectiveError, CustomStringConvertible {
    public let epoch: Int
    public let step: Int
    public let loss: Double
    public let lowest: Double
    public let factor: Double
    /// true: found before a checkpoint, on the loss of the last step's own
    /// batch at the updated parameters; false: on a step's loss, before its update.
    public let beforeCheckpoint: Bool
    /// The newest training-state checkpoint (the loop fills it in).
    public var newest: String?

    /// The loss above which a run diverges: `factor` × `lowest`, for losses of
    /// magnitude below 1 `lowest` + (`factor` − 1).
    public static func bound(lowest: Double, factor: Double) -> Double {
        lowest + (factor - 1) * max(abs(lowest), 1)
    }

    public var description: String {
        let over = loss.isFinite
            ? "\(loss), over train.divergence_factor (\(factor)) × the lowest step loss since the run started or resumed (\(lowest))"
            : "a non-finite value (\(loss))"
        let what = beforeCheckpoint
            ? "diverged at step \(step) (epoch \(epoch)): its update took the loss of its own batch to \(over); "
                + "the state after it was not checkpointed"
            : "diverged at step \(step) (epoch \(epoch)): loss \(over); training stopped before applying it, and "
                + "nothing after the newest checkpoint was written"
        return what + "; " + (newest.map { "the newest checkpoint is \($0)" } ?? "there is no training-state checkpoint yet")
            + ". Continue with a lower rate (--resume DIR --allow-config-change train.lr --set train.lr=…), from an older "
            + "checkpoint (--resume DIR --from-step N), or with a larger train.divergence_factor (0 = off)"
    }
}

/// `train.divergence_factor`: the lowest step loss so far, and the bound a
/// loss may not exceed. Every rank sees the same reduced losses, so every rank
/// decides alike.
public struct DivergenceGuard: Sendable {
    /// 0 = off.
    public let factor: Double
    public private(set) var lowest = Double.infinity

    public init(factor: Double) { self.factor = factor }

    public var bound: Double {
        factor > 0 && lowest.isFinite ? DivergenceError.bound(lowest: lowest, factor: factor) : .infinity
    }

    /// Throws when `loss` is over the bound (or NaN); else takes it into the lowest.
    public mutating func observe(_ loss: Double, epoch: Int, step: Int, beforeCheckpoint: Bool) throws {
        guard loss <= bound || factor == 0 else {
            throw DivergenceError(epoch: epoch, step: step, loss: loss, lowest: lowest, factor: factor,
                                  beforeCheckpoint: beforeCheckpoint)
        }
        lowest = min(lowest, loss)
    }
}

public struct ReplicaDivergenceError: CollectiveError, CustomStringConvertible {
    public let epoch: Int
    public var description: String { "replicated parameters differ between ranks after epoch \(epoch)" }
}
