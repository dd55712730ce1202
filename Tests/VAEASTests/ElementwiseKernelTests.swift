import XCTest
import Foundation
import _TestSupport
import VAEAS

/// The C elementwise kernels (CKernels, reached through `Kernels`) against
/// scalar references. Where the kernel does the same Float arithmetic in the
/// same order as a Swift loop would (bias + tanh/ReLU, activation backward,
/// the bias gradient, Adam), the comparison is bit for bit: contraction is off
/// in the C target, so the AVX-512 clone cannot fuse a multiply-add the
/// reference rounds twice. Where the kernel uses polynomial exp/log1p (BCE),
/// the reference is Double libm and the tolerance is derived from the
/// polynomials' error. Every threaded kernel must also give the same bits at
/// 1 and 2 threads.
final class ElementwiseKernelTests: XCTestCase {
    /// Runs `body` with OpenBLAS (and so `Parallel`) at `threads`, restoring the count after.
    func withThreads<T>(_ threads: Int, _ body: () -> T) -> T {
        let saved = BLAS.threads
        defer { BLAS.threads = saved }
        BLAS.threads = threads
        return body()
    }

    /// Inputs spanning tanh's regimes: the |x| < 4e-4 pass-through, the
    /// polynomial's range, the clamp at ±7.9 and beyond, and exact zeros.
    func tanhInputs(_ n: Int, seed: UInt64) -> [Float] {
        var rng = TestRNG(seed)
        return (0..<n).map { i in
            switch i % 5 {
            case 0: return rng.uniform(-1e-3, 1e-3)
            case 1: return rng.uniform(-9, 9)
            case 2: return rng.uniform(-30, 30)
            case 3: return i % 2 == 0 ? 0 : rng.uniform(-1, 1)
            default: return rng.uniform(-3, 3)
            }
        }
    }

    /// out ← act(out + b) equals the Swift scalar `fastTanh(out + b)` (ReLU:
    /// max(out + b, 0)) bit for bit, over rows long enough to take the vector
    /// body and a ragged tail, at 1 and 2 threads.
    func testBiasActivationMatchesScalarBitForBit() {
        for (rows, cols) in [(3, 37), (64, 500), (257, 40)] {
            let pre = tanhInputs(rows * cols, seed: UInt64(rows))
            var rng = TestRNG(9)
            let bias = rng.array(cols, -0.5, 0.5)
            for act in [Activation?.none, .tanh, .relu] {
                var expect = pre
                for r in 0..<rows {
                    for j in 0..<cols {
                        let s = pre[r * cols + j] + bias[j]
                        switch act {
                        case .tanh?: expect[r * cols + j] = Kernels.fastTanh(s)
                        case .relu?: expect[r * cols + j] = max(s, 0)
                        case nil: expect[r * cols + j] = s
                        }
                    }
                }
                for threads in [1, 2] {
                    var out = pre
                    withThreads(threads) {
                        out.withUnsafeMutableBufferPointer { o in
                            bias.withUnsafeBufferPointer { b in
                                Kernels.biasActivation(o.baseAddress!, bias: b.baseAddress!, rows: rows, cols: cols, act)
                            }
                        }
                    }
                    XCTAssertEqual(out.map(\.bitPattern), expect.map(\.bitPattern),
                                   "\(String(describing: act)) \(rows)×\(cols), \(threads) thread(s)")
                }
            }
        }
    }

    /// The in-place activation (no bias) is the same map: Kernels.activationForward
    /// over 40 000 elements (split across threads) against fastTanh element by element.
    func testActivationForwardMatchesFastTanh() {
        let x = tanhInputs(40_000, seed: 3)
        for threads in [1, 2] {
            var y = x
            withThreads(threads) { y.withUnsafeMutableBufferPointer { Kernels.activationForward(.tanh, $0.baseAddress!, count: $0.count) } }
            XCTAssertEqual(y.map(\.bitPattern), x.map { Kernels.fastTanh($0).bitPattern })
        }
    }

    /// d ← d·act'(y) and db += Σ_rows d in one sweep, against the two separate
    /// scalar loops (the bias sums in row order), bit for bit, at 1 and 2 threads.
    func testActivationBackwardWithBiasGradientMatchesScalar() {
        for (rows, cols) in [(5, 37), (128, 500), (300, 64)] {
            var rng = TestRNG(UInt64(cols))
            let d0 = rng.array(rows * cols)
            let y = rng.array(rows * cols, -1, 1)
            let db0 = rng.array(cols)   // gradients accumulate: db starts non-zero
            for act in [Activation?.none, .tanh, .relu] {
                var d = d0, db = db0
                for i in 0..<(rows * cols) {
                    switch act {
                    case .tanh?: d[i] *= 1 - y[i] * y[i]
                    case .relu?: d[i] = y[i] > 0 ? d[i] : 0
                    case nil: break
                    }
                }
                for r in 0..<rows { for j in 0..<cols { db[j] += d[r * cols + j] } }
                for threads in [1, 2] {
                    var dk = d0, dbk = db0
                    withThreads(threads) {
                        dk.withUnsafeMutableBufferPointer { dp in
                            y.withUnsafeBufferPointer { yp in
                                dbk.withUnsafeMutableBufferPointer { bp in
                                    Kernels.activationBackward(act, dp.baseAddress!, output: yp.baseAddress!, rows: rows,
                                                               cols: cols, biasGradient: bp.baseAddress!)
                                }
                            }
                        }
                    }
                    let what = "\(String(describing: act)) \(rows)×\(cols), \(threads) thread(s)"
                    XCTAssertEqual(dk.map(\.bitPattern), d.map(\.bitPattern), "d: " + what)
                    XCTAssertEqual(dbk.map(\.bitPattern), db.map(\.bitPattern), "db: " + what)
                }
            }
        }
    }

    /// BCE with logits and its gradient against Double libm, over logits from
    /// the exp underflow (|ℓ| > 87.3: e^−|ℓ| is 0) to |ℓ| < 1e-6, and
    /// fractional targets. Tolerances: each term's exp/log1p is within ~3e-7
    /// relative, and a row of 784 sums 49 terms per lane in Float, so a row's
    /// loss is within 50 · 6e-8 ≈ 3e-6 of its size (+ 1e-6 per row absolute);
    /// σ(ℓ) is a quotient of two such values, so dℓ is within 1e-6·|scale|.
    func testBernoulliNLLMatchesDoubleReference() {
        let special: [Float] = [0, -0.0, 1e-7, -1e-7, 1e-3, -1e-3, 15, -15, 87, -87, 87.5, -87.5, 100, -100, 1e4, -1e4]
        for (rows, cols, repeatL) in [(6, 784, 2), (4, 37, 1), (3, 16, 3)] {
            var rng = TestRNG(UInt64(cols))
            var logits = rng.array(rows * cols, -12, 12)
            for (k, v) in special.enumerated() where k < logits.count { logits[k * 5 % logits.count] = v }
            let targets = (0..<((rows + repeatL - 1) / repeatL * cols)).map { i -> Float in
                i % 3 == 0 ? rng.uniform(0, 1) : (rng.uniform(0, 1) > 0.5 ? 1 : 0)
            }
            let scale: Float = 0.37
            var results: [([Double], [Float])] = []
            for threads in [1, 2] {
                var loss = [Double](repeating: 0, count: rows)
                var dl = [Float](repeating: 0, count: rows * cols)
                withThreads(threads) {
                    logits.withUnsafeBufferPointer { lp in
                        targets.withUnsafeBufferPointer { tp in
                            loss.withUnsafeMutableBufferPointer { rp in
                                dl.withUnsafeMutableBufferPointer { dp in
                                    Kernels.bernoulliNLL(logits: lp.baseAddress!, targets: tp.baseAddress!, rows: rows, cols: cols,
                                                         targetRepeat: repeatL, rowLoss: rp.baseAddress!, dlogits: dp.baseAddress!,
                                                         scale: scale)
                                }
                            }
                        }
                    }
                }
                results.append((loss, dl))
            }
            XCTAssertEqual(results[0].0, results[1].0, "row losses depend on the thread count")
            XCTAssertEqual(results[0].1.map(\.bitPattern), results[1].1.map(\.bitPattern), "dlogits depend on the thread count")
            let (loss, dl) = results[0]
            for r in 0..<rows {
                var expect = 0.0
                for p in 0..<cols {
                    let l = Double(logits[r * cols + p]), x = Double(targets[r / repeatL * cols + p])
                    expect += max(l, 0) - l * x + log1p(exp(-abs(l)))
                    let sig = l >= 0 ? 1 / (1 + exp(-l)) : exp(l) / (1 + exp(l))
                    let g = Double(scale) * (sig - x)
                    XCTAssertEqual(Double(dl[r * cols + p]), g, accuracy: 1e-6 * Double(scale),
                                   "dℓ row \(r) col \(p), ℓ = \(l), x = \(x)")
                }
                XCTAssertEqual(loss[r], expect, accuracy: 3e-6 * abs(expect) + 1e-6, "row \(r) of \(rows)×\(cols)")
            }
            // The loss-only call gives the same row losses.
            var lossOnly = [Double](repeating: 0, count: rows)
            logits.withUnsafeBufferPointer { lp in
                targets.withUnsafeBufferPointer { tp in
                    lossOnly.withUnsafeMutableBufferPointer { rp in
                        Kernels.bernoulliNLL(logits: lp.baseAddress!, targets: tp.baseAddress!, rows: rows, cols: cols,
                                             targetRepeat: repeatL, rowLoss: rp.baseAddress!, dlogits: nil, scale: 0)
                    }
                }
            }
            XCTAssertEqual(lossOnly, loss)
        }
    }

    /// The fused Adam pass equals the same Float formula written as a scalar
    /// Swift loop (the update before the C kernel), bit for bit, over a ragged length.
    func testAdamMatchesScalarFloatUpdateBitForBit() {
        let n = 1_003
        var rng = TestRNG(21)
        let p0 = rng.array(n), g1 = rng.array(n, -3, 3), g2 = rng.array(n, -1e-4, 1e-4)
        let (b1, b2, eps, lr): (Float, Float, Float, Float) = (0.9, 0.999, 1e-8, 3e-3)
        var p = p0, m = [Float](repeating: 0, count: n), v = m
        for (t, g) in [g1, g2].enumerated() {
            let stepSize = lr / (1 - Float(pow(Double(b1), Double(t + 1))))
            let invSqrtBc2 = 1 / (1 - Float(pow(Double(b2), Double(t + 1)))).squareRoot()
            for i in 0..<n {
                let mi = b1 * m[i] + (1 - b1) * g[i]
                let vi = b2 * v[i] + (1 - b2) * g[i] * g[i]
                m[i] = mi; v[i] = vi
                p[i] -= stepSize * mi / (vi.squareRoot() * invSqrtBc2 + eps)
            }
        }
        let adam = Adam(count: n, lr: lr, beta1: b1, beta2: b2, eps: eps)
        let q = pointer(p0); defer { q.deallocate() }
        g1.withUnsafeBufferPointer { adam.update(q, grads: $0.baseAddress!) }
        g2.withUnsafeBufferPointer { adam.update(q, grads: $0.baseAddress!) }
        XCTAssertEqual((0..<n).map { q[$0].bitPattern }, p.map(\.bitPattern))
        XCTAssertEqual((0..<n).map { adam.m[$0].bitPattern }, m.map(\.bitPattern))
        XCTAssertEqual((0..<n).map { adam.v[$0].bitPattern }, v.map(\.bitPattern))
    }

    /// Σx² in Double: against a Double loop (relative 1e-12: the only
    /// differences are the order of Double additions), finite for floats whose
    /// square overflows Float, +inf/NaN for a non-finite element, and the
    /// same at 1 and 2 threads.
    func testSumOfSquares() {
        var rng = TestRNG(8)
        var x = rng.array(300_017, -2, 2)
        x[5] = 3e38
        let expect = x.reduce(0.0) { $0 + Double($1) * Double($1) }
        let one = withThreads(1) { x.withUnsafeBufferPointer { Kernels.sumOfSquares($0.baseAddress!, count: $0.count) } }
        let two = withThreads(2) { x.withUnsafeBufferPointer { Kernels.sumOfSquares($0.baseAddress!, count: $0.count) } }
        XCTAssertEqual(one, two)
        XCTAssertTrue(one.isFinite)
        XCTAssertEqual(one, expect, accuracy: 1e-12 * expect)
        for bad: Float in [.nan, .infinity, -.infinity] {
            x[123_456] = bad
            XCTAssertFalse(x.withUnsafeBufferPointer { Kernels.sumOfSquares($0.baseAddress!, count: $0.count) }.isFinite, "\(bad)")
        }
        XCTAssertEqual([Float]().withUnsafeBufferPointer { Kernels.sumOfSquares($0.baseAddress ?? UnsafePointer(bitPattern: 8)!, count: 0) }, 0)
    }
}
