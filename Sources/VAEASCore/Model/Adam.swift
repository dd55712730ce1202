import VAEASConfig
import CKernels

/// Adam (Kingma & Ba 2015) over a flat buffer, in PyTorch's arithmetic
/// (`torch.optim.Adam`, no weight decay): m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
/// p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
///
/// The one optimizer of every parameter kind: `update` is the dense step
/// (replicated parameters, the full softmax's shard); `beginSparseStep` +
/// `updateSparse` is `torch.optim.SparseAdam`'s rule (the tree's nodes): only
/// the elements given move, their moments change only then, and the bias
/// correction uses the global step count.
public final class Adam {
    public let count: Int
    public var lr: Float
    public let beta1: Float, beta2: Float, eps: Float
    public private(set) var step = 0
    public let m: UnsafeMutablePointer<Float>
    public let v: UnsafeMutablePointer<Float>

    public init(count: Int, lr: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.count = count; self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        m = .allocate(capacity: max(count, 1)); m.initialize(repeating: 0, count: max(count, 1))
        v = .allocate(capacity: max(count, 1)); v.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { m.deallocate(); v.deallocate() }

    /// Restores a saved state: the step count t and the moments (resumed training).
    public func restore(step: Int, m: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        self.step = step
        self.m.update(from: m, count: count)
        self.v.update(from: v, count: count)
    }

    /// The step's scalars: lr/(1−β₁ᵗ) and 1/√(1−β₂ᵗ).
    public struct StepScalars: Sendable {
        public let stepSize: Float
        public let invSqrtBc2: Float
    }

    private func advance() -> StepScalars {
        step += 1
        return scalars(step: step, lr: lr)
    }

    /// Starts one sparse optimizer step; pass the result to each `updateSparse` of this step.
    public func beginSparseStep() -> StepScalars { advance() }

    /// SparseAdam on the elements `range` of the flat buffer (e.g. one tree node's row).
    @inline(__always)
    public func updateSparse(_ params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, _ range: Range<Int>,
                             _ s: StepScalars) {
        for i in range {
            let g = grads[i]
            let mi = beta1 * m[i] + (1 - beta1) * g
            let vi = beta2 * v[i] + (1 - beta2) * g * g
            m[i] = mi; v[i] = vi
            params[i] -= s.stepSize * mi / (vi.squareRoot() * s.invSqrtBc2 + eps)
        }
    }

    /// One dense step over every element: one fused pass over p, g, m, v
    /// (`ck_adam`, PyTorch's `fused=True` idea) at the CPU's vector width,
    /// split over the rank's cores. Elementwise, so the bits do not depend on
    /// the thread count or the vector width.
    public func update(_ params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>) {
        apply(params, grads: grads, 0..<count, advance())
    }

    /// The scalars of step `t` at learning rate `lr`, without advancing the
    /// optimizer's own count: for a parameter group that keeps its own step
    /// count and rate (PyTorch's per-group `lr` and per-parameter `step`), such
    /// as the classifier's with `train.cls_lr` / `train.cls_steps`.
    public func scalars(step t: Int, lr: Float) -> StepScalars {
        let bc1 = 1 - Float(Double(beta1).power(t))
        let bc2 = 1 - Float(Double(beta2).power(t))
        return StepScalars(stepSize: lr / bc1, invSqrtBc2: 1 / bc2.squareRoot())
    }

    /// Counts one step of the whole buffer without updating anything (the
    /// groups were updated through `update(_:grads:range:_:)`).
    public func countStep() { step += 1 }

    /// The dense rule on the elements `range` only, with the given scalars.
    public func update(_ params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, range: Range<Int>,
                       _ scalars: StepScalars) {
        apply(params, grads: grads, range, scalars)
    }

    private func apply(_ params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, _ whole: Range<Int>,
                       _ s: StepScalars) {
        let m = self.m, v = self.v, beta1 = self.beta1, beta2 = self.beta2, eps = self.eps
        // Four streams in, three out: memory-bound, worth a second core from 64 K elements.
        Parallel.chunks(whole.count, grain: 65_536) { c in
            ck_adam(params, grads, m, v, whole.lowerBound + c.lowerBound, whole.lowerBound + c.upperBound,
                    beta1, beta2, eps, s.stepSize, s.invSqrtBc2)
        }
    }
}

extension Double {
    func power(_ n: Int) -> Double {
        var r = 1.0, b = self, k = n
        while k > 0 { if k & 1 == 1 { r *= b }; b *= b; k >>= 1 }
        return r
    }
}
