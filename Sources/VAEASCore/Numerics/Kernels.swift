import VAEASConfig
import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Elementwise kernels. The VAE path's hot ones (bias + activation,
/// activation backward + bias gradient, BCE with its gradient, Adam, Σg²) are
/// the C target `CKernels`, built for AVX-512F / AVX2 / baseline by
/// `target_clones` and giving the same bits in every clone; these wrappers
/// split them over the rank's cores (`Parallel`). The rest are Swift loops
/// over raw pointers written so that the optimizer can vectorize them.
public enum Kernels {
    /// tanh by Eigen's rational approximation (degree 13/6 on [-7.9, 7.9],
    /// error below 1e-6 absolute): unlike libm's `tanhf` it vectorizes. The
    /// layers apply it through the C kernels (`ck_bias_act_forward`), which do
    /// the same arithmetic in the same order; this is their scalar reference.
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

    /// The C kernels' code for an activation (nil: identity).
    @inline(__always)
    static func code(_ act: Activation?) -> Int32 {
        switch act {
        case nil: return Int32(CK_ACT_NONE)
        case .tanh?: return Int32(CK_ACT_TANH)
        case .relu?: return Int32(CK_ACT_RELU)
        }
    }

    /// Least elements worth a thread of their own in the elementwise kernels
    /// (below it, waking a second thread costs more than it saves).
    static let grain = 16_384

    /// In place: x ← act(x).
    public static func activationForward(_ act: Activation, _ x: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.chunks(count, grain: grain) { r in
            ck_bias_act_forward(x + r.lowerBound, nil, 0, 1, r.count, code(act))
        }
    }

    /// In place over out[rows × cols]: out ← act(out + b) (`bias` nil: no bias;
    /// `act` nil: identity). The one sweep after a Linear layer's product
    /// `out = x Wᵀ` (Linear.forward), split by rows over the rank's cores.
    public static func biasActivation(_ out: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                                      rows: Int, cols: Int, _ act: Activation?) {
        if act == nil && bias == nil { return }
        Parallel.chunks(rows, grain: max(1, grain / max(cols, 1))) { r in
            ck_bias_act_forward(out, bias, r.lowerBound, r.upperBound, cols, code(act))
        }
    }

    /// In place: d ← d · act'(pre), with act' written in terms of the output y = act(pre).
    public static func activationBackward(_ act: Activation, _ d: UnsafeMutablePointer<Float>,
                                          output y: UnsafePointer<Float>, count: Int) {
        Parallel.chunks(count, grain: grain) { r in
            ck_act_backward_bias(d + r.lowerBound, y + r.lowerBound, 1, r.count, 0, r.count, code(act), nil)
        }
    }

    /// Over d[rows × cols]: d ← d · act'(pre) (act' through y = act(pre);
    /// `act` nil: d unchanged), and with `biasGradient` db[j] += Σ_r d[r, j]
    /// in the same sweep (∂L/∂b of the Linear layer that produced pre). Split
    /// by columns over the rank's cores, so each db[j] adds its rows in order
    /// and the bits do not depend on the thread count.
    public static func activationBackward(_ act: Activation?, _ d: UnsafeMutablePointer<Float>,
                                          output y: UnsafePointer<Float>?, rows: Int, cols: Int,
                                          biasGradient db: UnsafeMutablePointer<Float>?) {
        if act == nil && db == nil { return }
        Parallel.chunks(cols, grain: max(1, grain / max(rows, 1))) { c in
            ck_act_backward_bias(d, y, rows, cols, c.lowerBound, c.upperBound, code(act), db)
        }
    }

    /// Bernoulli negative log-likelihood with logits, fused with its gradient.
    ///
    /// For each of `rows` rows of `cols` logits ℓ against targets x ∈ [0, 1]:
    /// nll_row = Σ_p max(ℓ,0) − ℓx + log(1 + e^{−|ℓ|})  (the stable form of
    /// BCE-with-logits), written to `rowLoss[r]`; and, if `dlogits` is given,
    /// dℓ = scale · (σ(ℓ) − x), in the same pass. Row r of the logits uses
    /// target row `r / targetRepeat` (L reparameterisation samples share one
    /// image). exp and log1p are polynomials (relative error ~1e-7, see
    /// `ck_bernoulli_nll`); rows are split over the rank's cores.
    public static func bernoulliNLL(logits: UnsafePointer<Float>, targets: UnsafePointer<Float>,
                                    rows: Int, cols: Int, targetRepeat: Int,
                                    rowLoss: UnsafeMutablePointer<Double>,
                                    dlogits: UnsafeMutablePointer<Float>?, scale: Float) {
        Parallel.chunks(rows, grain: max(1, grain / max(cols, 1))) { r in
            ck_bernoulli_nll(logits, targets, r.lowerBound, r.upperBound, cols, targetRepeat, rowLoss, dlogits, scale)
        }
    }

    /// Σ x² in Double; +inf or NaN if any element is not finite (squares of
    /// finite floats cannot overflow a Double), so it is the finite check and
    /// the squared L2 norm in one pass. Fixed blocks of 4096 (eight Double
    /// lanes each), blocks added in order: the result does not depend on the
    /// thread count or the CPU's vector width.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
        let blocks = (count + 4095) / 4096
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: max(blocks, 1)) { partial in
            Parallel.chunks(blocks, grain: 16) { r in
                for b in r { partial[b] = ck_sum_squares(x + b * 4096, min(4096, count - b * 4096)) }
            }
            var total: Double = 0
            for b in 0..<blocks { total += partial[b] }
            return total
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


