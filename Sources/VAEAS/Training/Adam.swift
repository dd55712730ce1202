/// Adam (Kingma & Ba 2015) over a flat buffer, in PyTorch's arithmetic
/// (`torch.optim.Adam`, no weight decay): m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
/// p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
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

    public func update(_ params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>) {
        step += 1
        let bc1 = 1 - Float(Double(beta1).power(step))
        let bc2 = 1 - Float(Double(beta2).power(step))
        let stepSize = lr / bc1
        let invSqrtBc2 = 1 / bc2.squareRoot()
        let b1 = beta1, b2 = beta2, e = eps
        for i in 0..<count {
            let g = grads[i]
            let mi = b1 * m[i] + (1 - b1) * g
            let vi = b2 * v[i] + (1 - b2) * g * g
            m[i] = mi
            v[i] = vi
            params[i] -= stepSize * mi / (vi.squareRoot() * invSqrtBc2 + e)
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
