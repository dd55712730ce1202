import VAEASConfig
import Foundation

/// Adam's hyperparameters (`train.lr`, `beta1`, `beta2`, `eps`), the
/// classifier's group (`train.cls_lr`, `train.cls_steps`), the schedule and
/// the gradient clip.
public struct OptimizerSettings: Sendable, Equatable {
    public var lr: Float, beta1: Float, beta2: Float, eps: Float
    /// The classifier's base rate (= `lr` unless `train.cls_lr` is set) and its updates per step.
    public var classifierLR: Float
    public var classifierSteps: Int
    public var schedule: LearningRateSchedule
    /// 0 = off.
    public var clipGradNorm: Double
    public init(lr: Float, beta1: Float, beta2: Float, eps: Float, classifierLR: Float? = nil, classifierSteps: Int = 1,
                schedule: LearningRateSchedule = LearningRateSchedule(), clipGradNorm: Double = 0) {
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.classifierLR = classifierLR ?? lr; self.classifierSteps = classifierSteps
        self.schedule = schedule; self.clipGradNorm = clipGradNorm
    }
    public init(_ t: TrainingConfig) {
        self.init(lr: Float(t.lr), beta1: Float(t.beta1), beta2: Float(t.beta2), eps: Float(t.eps),
                  classifierLR: t.clsLR > 0 ? Float(t.clsLR) : nil, classifierSteps: t.clsSteps,
                  schedule: LearningRateSchedule(warmupSteps: t.warmupSteps, kind: t.lrSchedule),
                  clipGradNorm: t.clipGradNorm)
    }
}

/// The learning-rate factor of optimizer step t (1-based): linear warm-up
/// over `warmupSteps` (Goyal et al. 2017), then constant or a cosine decay to
/// 0 at `totalSteps` (Loshchilov & Hutter 2017). A pure function of t, so a
/// resumed run continues the same curve.
public struct LearningRateSchedule: Sendable, Equatable {
    public var warmupSteps: Int
    public var kind: LRSchedule
    public init(warmupSteps: Int = 0, kind: LRSchedule = .constant) { self.warmupSteps = warmupSteps; self.kind = kind }

    public func factor(step t: Int, totalSteps: Int) -> Float {
        if warmupSteps > 0 && t < warmupSteps { return Float(t) / Float(warmupSteps) }
        switch kind {
        case .constant: return 1
        case .cosine:
            let span = max(1, totalSteps - warmupSteps)
            let progress = min(1, Double(max(0, t - warmupSteps)) / Double(span))
            return Float(0.5 * (1 + cos(Double.pi * progress)))
        }
    }
}

/// KL annealing's factor at optimizer step t (1-based): t / T up to T, then 1.
public func klAnnealFactor(step t: Int, annealSteps: Int) -> Double {
    annealSteps > 0 && t < annealSteps ? Double(t) / Double(annealSteps) : 1
}
