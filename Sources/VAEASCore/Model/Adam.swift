import VAEASConfig

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

    /// One dense step over every element.
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
                       _ scalars: StepScalars) {
        let stepSize = scalars.stepSize
        let invSqrtBc2 = scalars.invSqrtBc2
        // Explicit 8-wide lanes: strict IEEE ordering keeps LLVM from
        // vectorizing the scalar loop, and this pass touches every parameter.
        typealias V = SIMD8<Float>
        let b1 = V(repeating: beta1), b2 = V(repeating: beta2), e = V(repeating: eps)
        let omb1 = V(repeating: 1 - beta1), omb2 = V(repeating: 1 - beta2)
        let ss = V(repeating: stepSize), ib = V(repeating: invSqrtBc2)
        let pr = UnsafeMutableRawPointer(params), gr = UnsafeRawPointer(grads)
        let mr = UnsafeMutableRawPointer(m), vr = UnsafeMutableRawPointer(v)
        let m = self.m, v = self.v, beta1 = self.beta1, beta2 = self.beta2, eps = self.eps
        Parallel.chunks(whole.count, grain: 65_536) { chunk in
        let range = (whole.lowerBound + chunk.lowerBound)..<(whole.lowerBound + chunk.upperBound)
        var i = range.lowerBound
        let vectorEnd = range.lowerBound + (range.count & ~7)
        while i < vectorEnd {
            let o = i * 4
            let g = gr.loadUnaligned(fromByteOffset: o, as: V.self)
            let mi = b1 * mr.loadUnaligned(fromByteOffset: o, as: V.self) + omb1 * g
            let vi = b2 * vr.loadUnaligned(fromByteOffset: o, as: V.self) + omb2 * g * g
            mr.storeBytes(of: mi, toByteOffset: o, as: V.self)
            vr.storeBytes(of: vi, toByteOffset: o, as: V.self)
            let p = pr.loadUnaligned(fromByteOffset: o, as: V.self) - ss * mi / (vi.squareRoot() * ib + e)
            pr.storeBytes(of: p, toByteOffset: o, as: V.self)
            i += 8
        }
        while i < range.upperBound {
            let g = grads[i]
            let mi = beta1 * m[i] + (1 - beta1) * g
            let vi = beta2 * v[i] + (1 - beta2) * g * g
            m[i] = mi
            v[i] = vi
            params[i] -= stepSize * mi / (vi.squareRoot() * invSqrtBc2 + eps)
            i += 1
        }
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
