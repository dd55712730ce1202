import XCTest
import _TestSupport
import Foundation
import CKernels
import VAEAS

/// The full softmax's C kernels (Sources/CKernels/classifier.c) against scalar
/// references in Double, and the tiled layer against a Double reference over
/// several tiles with a ragged last one.
final class ClassifierKernelTests: XCTestCase {
    /// ckc_exp is Kernels.exp8's formula operation for operation: the same
    /// bits, and the same ~2e-7 relative error against Double exp (Cephes
    /// states 1.7e-7 for float; 4e-7 leaves room for the final rounding), on
    /// [−87.2, 88.3]: above 88.38 both give inf (2^128 scale), which softmax
    /// never asks for (its arguments are ℓ − max ≤ 0).
    func testExpMatchesTheSwiftKernelBitForBitAndDoubleExp() {
        var x: Float = -87.2
        var worst = 0.0
        while x < 88.3 {
            let lanes = Kernels.exp8(SIMD8<Float>(repeating: x))
            XCTAssertEqual(ckc_exp(x).bitPattern, lanes[0].bitPattern, "x = \(x)")
            let exact = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(ckc_exp(x)) - exact) / exact)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 4e-7)
        XCTAssertEqual(ckc_exp(-100), 0)
        XCTAssertTrue(ckc_exp(.nan).isNaN, "a NaN logit must stay NaN for the finite check")
    }

    /// Logits for `rows` × `cols`, spread like a trained classifier's.
    func logits(_ rows: Int, _ cols: Int, seed: UInt64 = 5) -> [Float] {
        var rng = TestRNG(seed)
        return (0..<(rows * cols)).map { _ in rng.uniform(-6, 9) }
    }

    /// Online statistics over tiles of uneven widths equal the row's max and
    /// its S, A computed directly in Double. Each lane sums ≤ 60 floats of
    /// relative error ~2e-7 (exp) + 6e-8 per addition, then the rescale: 1e-5
    /// relative covers it with margin (measured ~1e-7).
    func testTileStatisticsEqualADirectComputation() {
        let rows = 5, cols = 1003
        let x = logits(rows, cols)
        var m = [Float](repeating: -.greatestFiniteMagnitude, count: rows)
        var s = [Double](repeating: 0, count: rows), a = s
        var c0 = 0
        for width in [37, 512, 16, 438] {
            x.withUnsafeBufferPointer { xp in
                ckc_softmax_tile_stats(xp.baseAddress! + c0, cols, rows, width, &m, &s, &a)
            }
            c0 += width
        }
        XCTAssertEqual(c0, cols)
        for r in 0..<rows {
            let row = x[(r * cols)..<((r + 1) * cols)]
            XCTAssertEqual(m[r], row.max()!)
            var rs = 0.0, ra = 0.0
            for v in row { let d = Double(v) - Double(m[r]); rs += Foundation.exp(d); ra += Foundation.exp(d) * d }
            XCTAssertEqual(s[r], rs, accuracy: 1e-5 * rs, "S row \(r)")
            XCTAssertEqual(a[r], ra, accuracy: 1e-5 * abs(ra) + 1e-6, "A row \(r)")
        }
    }

    /// The gradient pass for each Î kind, a target inside and outside the
    /// column range, bias written then accumulated, against Double.
    /// Gradients are O(scale) with float relative error ~3e-7: atol 1e-6·scale.
    func testTileGradientsEqualADirectComputation() {
        let rows = 4, cols = 203, colBase = 1000
        let x = logits(rows, cols, seed: 9)
        let targets: [Int32] = [1000 + 17, 999, 1000 + 202, 1000 + 0]   // row 1's target is another range's
        let m = (0..<rows).map { r in x[(r * cols)..<((r + 1) * cols)].max()! }
        let s = (0..<rows).map { r in x[(r * cols)..<((r + 1) * cols)].reduce(0.0) { $0 + Foundation.exp(Double($1 - m[r])) } }
        let inv = s.map { Float(1 / $0) }
        let ceScale: Float = 0.125, miScale: Float = -0.7
        for kind in [Int32(0), 1, 2] {
            let miRow: [Float] = (0..<rows).map { kind == 1 ? m[$0] + 0.25 * Float($0) : 0.3 + 0.1 * Float($0) }
            var gce = [Float](repeating: .nan, count: rows * cols), gmi = gce
            var gb = [Float](repeating: 7, count: cols)
            for accumulate in [Int32(0), 1] {
                let l1 = ckc_softmax_tile_grad(x, cols, rows, cols, m, inv, targets, colBase, ceScale, &gce, cols,
                                               kind, miRow, miScale, &gmi, cols, &gb, accumulate)
                var refL1 = 0.0
                for j in 0..<cols {
                    var db = 0.0
                    for r in 0..<rows {
                        let p = Foundation.exp(Double(x[r * cols + j] - m[r])) / s[r]
                        let hit = Int(targets[r]) - colBase == j ? 1.0 : 0.0
                        let ce = Double(ceScale) * (p - hit)
                        db += ce
                        refL1 += abs(ce)
                        XCTAssertEqual(Double(gce[r * cols + j]), ce, accuracy: 1e-6 * Double(ceScale), "ce \(r),\(j)")
                        if kind == 1 {
                            let want = -Double(miScale) * p * Double(x[r * cols + j] - miRow[r])
                            XCTAssertEqual(Double(gmi[r * cols + j]), want, accuracy: 1e-6 * 16, "entropy \(r),\(j)")
                        } else if kind == 2 {
                            XCTAssertEqual(Double(gmi[r * cols + j]), Double(miRow[r]) * (p - hit), accuracy: 1e-6, "coef \(r),\(j)")
                        } else {
                            XCTAssertTrue(gmi[r * cols + j].isNaN, "kind 0 must not write the Î gradient")
                        }
                    }
                    let want = accumulate == 1 ? 2 * db : db
                    XCTAssertEqual(Double(gb[j]), want, accuracy: 1e-6, "bias \(j) accumulate \(accumulate)")
                }
                XCTAssertEqual(l1, refL1, accuracy: 1e-5 * refL1)
            }
        }
    }

    func testAbsSumAndNonFiniteElements() {
        var rng = TestRNG(3)
        let x = (0..<10_007).map { _ in rng.uniform(-2, 2) }
        // Float lanes of 256 terms each before going to Double: relative error ≤ 256 · 6e-8 ≈ 1.5e-5.
        let exact = x.reduce(0.0) { $0 + Double(abs($1)) }
        XCTAssertEqual(ckc_abs_sum(x, x.count), exact, accuracy: 2e-5 * exact)
        var y = x
        y[5000] = .nan
        XCTAssertTrue(ckc_abs_sum(y, y.count).isNaN)
        y[5000] = .infinity
        XCTAssertFalse(ckc_abs_sum(y, y.count).isFinite)
    }

    /// The tiled layer over several forward and backward tiles (R = 64: tiles
    /// of 2048 and 1024 columns; V = 5000 with a ragged last tile) against
    /// the layer's maths in Double: CE, H, dW, db and both dH.
    /// Tolerances: float logits from h = 16 products (~1e-6 relative), sums
    /// of 5000 exponentials (1e-5 relative), gradients accumulated over 64
    /// rows or 5000 columns: 1e-4 of each quantity's scale.
    func testTiledLayerEqualsDoubleReference() {
        let rows = 64, h = 16, V = 5000
        let sm = PartitionedSoftmax(labels: V, width: h, comm: LocalCommunicator(), globalRowCapacity: rows, localRowCapacity: rows)
        sm.initialize(rng: Philox(seed: 4, purpose: .parameterInit), scheme: .pytorch)
        var rng = TestRNG(8)
        for k in 0..<V { sm.store.values[sm.bias + k] = rng.uniform(-1, 1) }
        let H = rng.array(rows * h, -2, 2)
        let targets = (0..<rows).map { Int32(($0 * 79) % V) }
        let ceScale: Float = 1 / Float(rows), miScale: Float = 0.3
        let W = Array(UnsafeBufferPointer(start: sm.store.values + sm.weight, count: V * h))
        let b = Array(UnsafeBufferPointer(start: sm.store.values + sm.bias, count: V))
        // Reference probabilities.
        let (p, ce, ent) = referenceSoftmax(H: H, W: W, bias: b, targets: targets, rows: rows, width: h)
        for round in 0..<2 {
            sm.zeroGrads()
            H.withUnsafeBufferPointer { hp in
                targets.withUnsafeBufferPointer { t in sm.forward(hLocal: hp.baseAddress!, localRows: rows, targets: t, batch: rows, samples: 1) }
            }
            for r in 0..<rows {
                XCTAssertEqual(sm.crossEntropy[r], ce[r], accuracy: 1e-4 * max(1, ce[r]), "CE row \(r)")
                XCTAssertEqual(sm.entropy[r], ent[r], accuracy: 1e-4 * max(1, ent[r]), "H row \(r)")
            }
            sm.backward(ceScale: ceScale, miScale: miScale, estimator: .entropy)
            XCTAssertTrue(sm.gradientCheck().isFinite)
            var worstW = 0.0, worstB = 0.0
            for j in 0..<V {
                var db = 0.0
                var dw = [Double](repeating: 0, count: h)
                for r in 0..<rows {
                    let g = Double(ceScale) * (p[r][j] - (Int(targets[r]) == j ? 1 : 0))
                    db += g
                    for k in 0..<h { dw[k] += g * Double(H[r * h + k]) }
                }
                worstB = max(worstB, abs(Double(sm.store.grads[sm.bias + j]) - db))
                for k in 0..<h { worstW = max(worstW, abs(Double(sm.store.grads[sm.weight + j * h + k]) - dw[k])) }
            }
            XCTAssertLessThan(worstB, 1e-6, "db, round \(round) (written, not accumulated, after zeroGrads)")
            XCTAssertLessThan(worstW, 1e-5, "dW, round \(round)")
            var worstCE = 0.0, worstMI = 0.0
            for r in 0..<rows {
                let meanLogP = p[r].reduce(0.0) { $0 + $1 * Foundation.log(max($1, 1e-300)) }
                for k in 0..<h {
                    var a = 0.0, c = 0.0
                    for j in 0..<V {
                        let pj = p[r][j]
                        a += Double(ceScale) * (pj - (Int(targets[r]) == j ? 1 : 0)) * Double(W[j * h + k])
                        c += Double(miScale) * (pj > 0 ? -pj * (Foundation.log(pj) - meanLogP) : 0) * Double(W[j * h + k])
                    }
                    worstCE = max(worstCE, abs(Double(sm.rowGather.dHiddenCE[r * h + k]) - a))
                    worstMI = max(worstMI, abs(Double(sm.rowGather.dHiddenMI[r * h + k]) - c))
                }
            }
            XCTAssertLessThan(worstCE, 1e-5, "dH CE")
            XCTAssertLessThan(worstMI, 1e-5, "dH Î")
        }
        // Without zeroGrads, a second backward adds to the gradients.
        let once = Array(UnsafeBufferPointer(start: sm.store.grads, count: sm.store.count))
        sm.backward(ceScale: ceScale, miScale: miScale, estimator: .entropy)
        for i in stride(from: 0, to: sm.store.count, by: 97) { XCTAssertEqual(sm.store.grads[i], 2 * once[i], accuracy: 1e-7) }
    }

    /// A non-finite hidden row makes the shard's check non-finite (the bound
    /// is not proved, and the gradients' sum is NaN).
    func testGradientCheckSeesANonFiniteHiddenRow() {
        let rows = 8, h = 4, V = 300
        let sm = PartitionedSoftmax(labels: V, width: h, comm: LocalCommunicator(), globalRowCapacity: rows, localRowCapacity: rows)
        sm.initialize(rng: Philox(seed: 4, purpose: .parameterInit), scheme: .pytorch)
        var H = [Float](repeating: 0.5, count: rows * h)
        let targets = (0..<rows).map { Int32($0) }
        for bad in [false, true] {
            if bad { H[13] = .infinity }
            sm.zeroGrads()
            H.withUnsafeBufferPointer { hp in
                targets.withUnsafeBufferPointer { t in sm.forward(hLocal: hp.baseAddress!, localRows: rows, targets: t, batch: rows, samples: 1) }
            }
            sm.backward(ceScale: 0.125, miScale: 0, estimator: .ce)
            XCTAssertEqual(sm.gradientCheck().isFinite, !bad, "bad = \(bad)")
        }
    }
}
