import XCTest
import _TestSupport
import VAEAS

/// Every backward pass against central finite differences (float32 forward,
/// losses accumulated in Double; small shapes keep rounding below the tolerance).
final class GradientCheckTests: XCTestCase {
    func testLinearBackward() {
        var rng = TestRNG(1)
        let store = ParameterStore(ParameterTable([.init(name: "l", inFeatures: 5, outFeatures: 4, initStream: 0)]))
        let layer = Linear("l", store: store)
        for i in 0..<store.count { store.values[i] = rng.uniform() }
        let rows = 3
        let x = pointer(rng.array(rows * 5))
        defer { x.deallocate() }
        let r = rng.array(rows * 4)   // f = Σ out ⊙ r
        var out = [Float](repeating: 0, count: rows * 4)
        func f() -> Double {
            out.withUnsafeMutableBufferPointer { op in
                layer.forward(op.baseAddress!, x, rows: rows, params: store.values)
            }
            return zip(out, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        _ = f()
        var dx = [Float](repeating: 0, count: rows * 5)
        store.zeroGrads()
        r.withUnsafeBufferPointer { rp in
            dx.withUnsafeMutableBufferPointer { dp in
                layer.backward(dinp: dp.baseAddress!, dout: rp.baseAddress!, inp: x, rows: rows,
                               params: store.values, grads: store.grads)
            }
        }
        for i in 0..<store.count {
            let fd = centralDifference(store.values, i, h: 1e-2, f)
            XCTAssertTrue(close(fd, Double(store.grads[i]), rtol: 1e-3, atol: 1e-4), "param \(i): fd \(fd) vs \(store.grads[i])")
        }
        for i in 0..<(rows * 5) {
            let fd = centralDifference(x, i, h: 1e-2, f)
            XCTAssertTrue(close(fd, Double(dx[i]), rtol: 1e-3, atol: 1e-4), "input \(i): fd \(fd) vs \(dx[i])")
        }
    }

    func testActivationsBackward() {
        for act in Activation.allCases {
            var rng = TestRNG(2)
            // Keep ReLU inputs away from the kink, where the derivative is undefined.
            let pre = pointer(rng.array(64, -3, 3).map { abs($0) < 0.05 ? $0 + 0.1 : $0 })
            defer { pre.deallocate() }
            let r = rng.array(64)
            func f() -> Double {
                var y = Array(UnsafeBufferPointer(start: pre, count: 64))
                y.withUnsafeMutableBufferPointer { Kernels.activationForward(act, $0.baseAddress!, count: 64) }
                return zip(y, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            var y = Array(UnsafeBufferPointer(start: pre, count: 64))
            y.withUnsafeMutableBufferPointer { Kernels.activationForward(act, $0.baseAddress!, count: 64) }
            var d = r
            y.withUnsafeBufferPointer { yp in
                d.withUnsafeMutableBufferPointer { Kernels.activationBackward(act, $0.baseAddress!, output: yp.baseAddress!, count: 64) }
            }
            for i in 0..<64 {
                let fd = centralDifference(pre, i, h: 1e-3, f)
                XCTAssertTrue(close(fd, Double(d[i]), rtol: 1e-2, atol: 2e-4), "\(act) \(i): fd \(fd) vs \(d[i])")
            }
        }
    }

    func testFastTanhMatchesLibm() {
        var worst: Float = 0
        var x: Float = -12
        while x <= 12 {
            worst = max(worst, abs(Kernels.fastTanh(x) - Foundation.tanh(x)))
            x += 0.0007
        }
        XCTAssertLessThan(worst, 2e-6)
        XCTAssertEqual(Kernels.fastTanh(0), 0)
        XCTAssertEqual(Kernels.fastTanh(50), 1, accuracy: 1e-6)
    }

    func testBernoulliNLLValueAndGradient() {
        var rng = TestRNG(3)
        let rows = 4, cols = 7, repeatL = 2
        let logits = pointer(rng.array(rows * cols, -30, 30))   // includes the large |ℓ| a naive form overflows on
        defer { logits.deallocate() }
        let targets = rng.array(rows / repeatL * cols, 0, 1).map { $0 > 0.5 ? Float(1) : 0 }
        var rowLoss = [Double](repeating: 0, count: rows)
        var dl = [Float](repeating: 0, count: rows * cols)
        let scale: Float = 0.25
        func f() -> Double {
            targets.withUnsafeBufferPointer { tp in
                rowLoss.withUnsafeMutableBufferPointer { rp in
                    Kernels.bernoulliNLL(logits: logits, targets: tp.baseAddress!, rows: rows, cols: cols,
                                         targetRepeat: repeatL, rowLoss: rp.baseAddress!, dlogits: nil, scale: 0)
                }
            }
            return rowLoss.reduce(0, +) * Double(scale)
        }
        targets.withUnsafeBufferPointer { tp in
            rowLoss.withUnsafeMutableBufferPointer { rp in
                dl.withUnsafeMutableBufferPointer { dp in
                    Kernels.bernoulliNLL(logits: logits, targets: tp.baseAddress!, rows: rows, cols: cols,
                                         targetRepeat: repeatL, rowLoss: rp.baseAddress!, dlogits: dp.baseAddress!, scale: scale)
                }
            }
        }
        // Value against the textbook form in Double.
        for r in 0..<rows {
            var expect = 0.0
            for p in 0..<cols {
                let l = Double(logits[r * cols + p]), x = Double(targets[r / repeatL * cols + p])
                let sig = 1 / (1 + exp(-l))
                expect -= x * log(max(sig, 1e-300)) + (1 - x) * log(max(1 - sig, 1e-300))
            }
            XCTAssertEqual(rowLoss[r], expect, accuracy: 1e-4 * max(1, expect))
        }
        for i in 0..<(rows * cols) {
            let fd = centralDifference(logits, i, h: 1e-2, f)
            XCTAssertTrue(close(fd, Double(dl[i]), rtol: 1e-2, atol: 1e-4), "logit \(i): fd \(fd) vs \(dl[i])")
        }
    }

    /// The whole VAE loss, (1/n) Σ_i [recon_i + KL_i] with fixed ε, against
    /// finite differences in every parameter, for both activations and L = 1, 3.
    func testVAELossGradient() {
        for (act, L) in [(Activation.tanh, 1), (.relu, 3), (.tanh, 3)] {
            let shape = VAEShape(input: 10, latent: 3, hidden: 6, encoderLayers: 2, decoderLayers: 2, activation: act)
            let n = 4
            let vae = VAE(shape: shape, capacity: n, samples: L, seed: 11)
            var rng = TestRNG(4)
            let x = rng.array(n * 10, 0, 1).map { $0 > 0.5 ? Float(1) : 0 }
            let eps = rng.array(n * L * 3, -2, 2)
            let scale = 1 / Float(n)
            func loss() -> Double {
                x.withUnsafeBufferPointer { xp in
                    vae.encode(xp.baseAddress!, n: n)
                    vae.reparameterize(eps: eps, n: n, samples: L)
                    vae.decode(rows: n * L)
                    vae.reconstruction(xp.baseAddress!, n: n, samples: L, gradScale: nil)
                }
                return (0..<n).reduce(0.0) { $0 + vae.recon[$1] + vae.kl[$1] } * Double(scale)
            }
            vae.store.zeroGrads()
            x.withUnsafeBufferPointer { xp in
                vae.encode(xp.baseAddress!, n: n)
                vae.reparameterize(eps: eps, n: n, samples: L)
                vae.decode(rows: n * L)
                vae.reconstruction(xp.baseAddress!, n: n, samples: L, gradScale: scale)
                vae.backward(xp.baseAddress!, eps: eps, n: n, samples: L, gradScale: scale)
            }
            var checked = 0, kinks = 0
            let base = loss()
            for slot in vae.store.slots {
                for j in 0..<slot.count {
                    let i = slot.offset + j
                    let h: Float = 3e-3
                    let fd = centralDifference(vae.store.values, i, h: h, loss)
                    let g = Double(vae.store.grads[i])
                    if act == .relu {
                        // A step across a ReLU kink makes the one-sided slopes
                        // disagree; the derivative is undefined there, so skip it.
                        let old = vae.store.values[i]
                        vae.store.values[i] = old + h; let up = loss()
                        vae.store.values[i] = old - h; let down = loss()
                        vae.store.values[i] = old
                        let right = (up - base) / Double(h), left = (base - down) / Double(h)
                        if !close(right, left, rtol: 0.05, atol: 2e-3) { kinks += 1; continue }
                    }
                    XCTAssertTrue(close(fd, g, rtol: 2e-2, atol: 5e-4), "\(act) L=\(L) \(slot.name)[\(j)]: fd \(fd) vs \(g)")
                    checked += 1
                }
            }
            XCTAssertEqual(checked + kinks, vae.store.count)
            XCTAssertLessThan(kinks, vae.store.count / 20, "too many coordinates sit on a ReLU kink to call this checked")
        }
    }
}
