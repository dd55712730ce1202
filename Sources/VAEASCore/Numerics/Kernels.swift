import VAEASConfig
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Elementwise kernels. Plain loops over raw pointers, written so that the
/// optimizer can vectorize them (no calls into libm in the inner loops that
/// run per hidden unit).
public enum Kernels {
    /// tanh by Eigen's rational approximation (degree 13/6 on [-7.9, 7.9],
    /// error below 1e-6 absolute): unlike libm's `tanhf` it vectorizes, and it
    /// is applied to every hidden unit of every layer.
    @inline(__always)
    public static func fastTanh(_ a: Float) -> Float {
        let x = min(max(a, -7.905_311_107_635_498_05), 7.905_311_107_635_498_05)
        let x2 = x * x
        var p: Float = -2.760_768_477_423_55e-16
        p = p * x2 + 2.000_187_904_824_77e-13
        p = p * x2 + -8.604_671_522_137_35e-11
        p = p * x2 + 5.122_297_090_371_14e-08
        p = p * x2 + 1.485_722_357_179_79e-05
        p = p * x2 + 6.372_619_288_754_36e-04
        p = p * x2 + 4.893_524_558_917_86e-03
        p = p * x
        var q: Float = 1.198_258_394_667_02e-06
        q = q * x2 + 1.185_347_056_866_54e-04
        q = q * x2 + 2.268_434_632_439_00e-03
        q = q * x2 + 4.893_525_185_543_85e-03
        return abs(a) < 0.0004 ? a : p / q
    }

    /// In place: x ← act(x).
    public static func activationForward(_ act: Activation, _ x: UnsafeMutablePointer<Float>, count: Int) {
        switch act {
        case .tanh:
            for i in 0..<count { x[i] = fastTanh(x[i]) }
        case .relu:
            for i in 0..<count { x[i] = max(x[i], 0) }
        }
    }

    /// In place: d ← d · act'(pre), with act' written in terms of the output y = act(pre).
    public static func activationBackward(_ act: Activation, _ d: UnsafeMutablePointer<Float>,
                                          output y: UnsafePointer<Float>, count: Int) {
        switch act {
        case .tanh:
            for i in 0..<count { d[i] *= 1 - y[i] * y[i] }
        case .relu:
            for i in 0..<count { d[i] = y[i] > 0 ? d[i] : 0 }
        }
    }

    /// Bernoulli negative log-likelihood with logits, fused with its gradient.
    ///
    /// For each of `rows` rows of `cols` logits ℓ against targets x ∈ [0, 1]:
    /// nll_row = Σ_p max(ℓ,0) − ℓx + log(1 + e^{−|ℓ|})  (the stable form of
    /// BCE-with-logits), written to `rowLoss[r]`; and, if `dlogits` is given,
    /// dℓ = scale · (σ(ℓ) − x). Row r of the logits uses target row `r / targetRepeat`
    /// (L reparameterisation samples share one image).
    public static func bernoulliNLL(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                                    rows: Int, cols: Int, targetRepeat: Int,
                                    rowLoss: UnsafeMutablePointer<Double>,
                                    dlogits: UnsafeMutablePointer<Float>?, scale: Float) {
        for r in 0..<rows {
            let l = logits + r * cols
            let x = targets + (r / targetRepeat) * cols
            var acc: Float = 0
            if let dl = dlogits.map({ $0 + r * cols }) {
                for p in 0..<cols {
                    let v = l[p]
                    let e = expf(-abs(v))
                    acc += max(v, 0) - v * x[p] + log1pf(e)
                    let sig = v >= 0 ? 1 / (1 + e) : e / (1 + e)
                    dl[p] = scale * (sig - x[p])
                }
            } else {
                for p in 0..<cols {
                    let v = l[p]
                    acc += max(v, 0) - v * x[p] + log1pf(expf(-abs(v)))
                }
            }
            rowLoss[r] = Double(acc)
        }
    }

    /// Sum of the elements, in Double; NaN or ±inf if any element is not finite.
    /// Fixed blocks of 4096 summed in eight Float lanes, blocks added in
    /// Double in order: the result does not depend on the thread count.
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        let blocks = (count + 4095) / 4096
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: max(blocks, 1)) { partial in
            Parallel.chunks(blocks) { r in
                for b in r { partial[b] = blockSum(x + b * 4096, count: min(4096, count - b * 4096)) }
            }
            var total: Double = 0
            for b in 0..<blocks { total += partial[b] }
            return total
        }
    }

    /// Σ x², in Double, blocks of 4096 in order (thread-count independent):
    /// the squared ‖g‖₂ of gradient clipping and `grad_norm`.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
        let blocks = (count + 4095) / 4096
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: max(blocks, 1)) { partial in
            Parallel.chunks(blocks) { r in
                for b in r {
                    var s = 0.0
                    for i in (b * 4096)..<min(count, (b + 1) * 4096) { let v = Double(x[i]); s += v * v }
                    partial[b] = s
                }
            }
            var total: Double = 0
            for b in 0..<blocks { total += partial[b] }
            return total
        }
    }

    @inline(__always)
    static func blockSum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        let raw = UnsafeRawPointer(x)
        var lanes = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= count {
            lanes += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var s = lanes.sum()
        while i < count { s += x[i]; i += 1 }
        return Double(s)
    }
}

extension Kernels {
    /// exp(x) for eight lanes at once (Cephes' expf: Cody–Waite range
    /// reduction and a degree-6 polynomial; relative error ~2e-7). Inputs
    /// below −87.3 give 0, which is what softmax rows shifted by their max need.
    @inline(__always)
    public static func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias V = SIMD8<Float>
        let lo: Float = -87.3, hi: Float = 88.7
        let tooSmall = x .< V(repeating: lo)
        let xc = x.clamped(lowerBound: V(repeating: lo), upperBound: V(repeating: hi))
        let n = (xc * 1.442_695_040_888_963_4).rounded(.toNearestOrEven)
        var r = xc - n * 0.693_359_375
        r = r - n * -2.121_944_400_546_905_8e-4
        var p = V(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * (r * r) + r + 1
        let e = (SIMD8<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
        let scale = unsafeBitCast(e, to: V.self)
        return (p * scale).replacing(with: 0, where: tooSmall)
    }

    /// out[j] = exp(x[j] − shift), returning Σ out and Σ out·(x − shift) in Double
    /// (the two sums a softmax row needs for its normalizer and its entropy).
    public static func expShifted(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int,
                                  shift: Float) -> (sum: Double, weighted: Double) {
        let xr = UnsafeRawPointer(x), orw = UnsafeMutableRawPointer(out)
        let s = SIMD8<Float>(repeating: shift)
        var acc = SIMD8<Float>(repeating: 0), accW = SIMD8<Float>(repeating: 0)
        var total = 0.0, totalW = 0.0
        var i = 0
        var sinceFlush = 0
        while i + 8 <= count {
            let d = xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - s
            let e = exp8(d)
            orw.storeBytes(of: e, toByteOffset: i * 4, as: SIMD8<Float>.self)
            acc += e
            accW += e * d
            i += 8
            sinceFlush += 1
            // Flush the float lanes to Double now and then, so rows of 10⁶ labels keep their precision.
            if sinceFlush == 512 { total += Double(acc.sum()); totalW += Double(accW.sum()); acc = .zero; accW = .zero; sinceFlush = 0 }
        }
        total += Double(acc.sum()); totalW += Double(accW.sum())
        while i < count {
            let d = x[i] - shift
            let e = expf(d)
            out[i] = e
            total += Double(e); totalW += Double(e * d)
            i += 1
        }
        return (total, totalW)
    }

    /// Largest element (−inf for an empty row).
    public static func rowMax(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m = SIMD8<Float>(repeating: -.infinity)
        let xr = UnsafeRawPointer(x)
        var i = 0
        while i + 8 <= count { m = pointwiseMax(m, xr.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)); i += 8 }
        var r = m.max()
        while i < count { r = Swift.max(r, x[i]); i += 1 }
        return r
    }
}


