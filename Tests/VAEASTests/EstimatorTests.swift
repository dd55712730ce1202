import XCTest
import _TestSupport
import Foundation
import VAEAS

/// The estimators on a case whose answer is known: N = 16 fixed Gaussian
/// posteriors q(z|x_i) = N(μ_i, σ²I) in two dimensions, so q(x = i | z)
/// (eq. 10), the exact MI and KL(q(z) ‖ p(z)) are computable by sampling z.
final class EstimatorTests: XCTestCase {
    let n = 16, d = 2
    let sigma: Float = 0.55
    var mu: [Float] {
        (0..<n).flatMap { i -> [Float] in
            let a = 2 * Float.pi * Float(i) / Float(n), r: Float = i % 2 == 0 ? 2.2 : 1.4
            return [r * cos(a), r * sin(a)]
        }
    }

    /// Draws `rows` (z, i) pairs, i uniform, z ~ q(z|x_i).
    func draw(_ rows: Int, _ rng: inout TestRNG, z: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>) {
        let m = mu
        for r in 0..<rows {
            let i = Int(rng.next() % UInt64(n))
            labels[r] = Int32(i)
            for k in 0..<d {
                // Box–Muller from the test generator.
                let u1 = max(rng.uniform(0, 1), 1e-7), u2 = rng.uniform(0, 1)
                z[r * d + k] = m[i * d + k] + sigma * (-2 * log(u1)).squareRoot() * cos(2 * Float.pi * u2)
            }
        }
    }

    /// log q(z|x_j) for all j, in Double.
    func logPosteriors(_ z: UnsafePointer<Float>) -> [Double] {
        let m = mu, s2 = Double(sigma * sigma)
        return (0..<n).map { j in
            var q = 0.0
            for k in 0..<d { let t = Double(z[k]) - Double(m[j * d + k]); q += t * t }
            return -0.5 * q / s2 - Double(d) * 0.5 * log(2 * Double.pi * s2)
        }
    }

    func logSumExp(_ v: [Double]) -> Double { let m = v.max()!; return m + log(v.reduce(0) { $0 + exp($1 - m) }) }

    /// Trains a classifier (full or tree softmax) on fresh draws until it approximates q(x|z).
    func trainedClassifier(tree: Bool, rowsPerStep: Int, rng: inout TestRNG) -> (AuxiliaryClassifier, ParameterStore, UnsafeMutablePointer<Float>) {
        let table = ParameterTable.classifierHidden(latent: d, width: 64, layers: 2)
        let store = ParameterStore(table)
        let cls = AuxiliaryClassifier(latent: d, store: store, activation: .tanh, labels: n, softmax: tree ? .tree : .full,
                                      localRowCapacity: rowsPerStep, globalRowCapacity: rowsPerStep, comm: LocalCommunicator())
        table.initialize(store, seed: 3, scheme: .glorot)
        cls.output.initialize(rng: Philox(seed: 3, purpose: .parameterInit), scheme: .glorot)
        let adamHidden = Adam(count: store.count, lr: 3e-3)
        let z = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerStep * d)
        var labels = [Int32](repeating: 0, count: rowsPerStep)
        for step in 0..<4000 {
            labels.withUnsafeMutableBufferPointer { draw(rowsPerStep, &rng, z: z, labels: $0.baseAddress!) }
            store.zeroGrads(); cls.output.zeroGrads()
            labels.withUnsafeBufferPointer {
                cls.forward(z: z, localRows: rowsPerStep, targets: $0, batch: rowsPerStep, samples: 1, params: store.values)
            }
            cls.backward(z: z, localRows: rowsPerStep, ceScale: 1 / Float(rowsPerStep), miScale: 0, estimator: .ce,
                         params: store.values, grads: store.grads)
            let lr: Float = step < 3000 ? 3e-3 : 1e-3
            adamHidden.lr = lr
            adamHidden.update(store.values, grads: store.grads)
            cls.output.applyUpdate(lr: lr, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        }
        return (cls, store, z)
    }

    /// Fresh (z, label) draws scored by the classifier.
    func score(_ cls: AuxiliaryClassifier, _ store: ParameterStore, _ z: UnsafeMutablePointer<Float>, rows: Int,
               rng: inout TestRNG) -> [Int32] {
        var labels = [Int32](repeating: 0, count: rows)
        labels.withUnsafeMutableBufferPointer { draw(rows, &rng, z: z, labels: $0.baseAddress!) }
        labels.withUnsafeBufferPointer { cls.forward(z: z, localRows: rows, targets: $0, batch: rows, samples: 1, params: store.values) }
        return labels
    }

    /// The tree reaches the full softmax's CE estimate where its splits are
    /// learnable: the labels go round the circle, so every subtree's leaf
    /// range is an arc of neighbouring posteriors.
    /// Both classifiers are evaluated on the same 40 × 256 draws (the same
    /// generator state), so the Monte Carlo noise is shared and the gap is the
    /// fit: measured 0.3 % (1.7511 tree, 1.7459 full). 1 % is three times that.
    func testTreeMatchesFullSoftmaxEstimate() {
        let rowsPerStep = 256
        var estimates: [Double] = []
        for tree in [false, true] {
            var rng = TestRNG(77)
            let (cls, store, z) = trainedClassifier(tree: tree, rowsPerStep: rowsPerStep, rng: &rng)
            defer { z.deallocate() }
            var hHat = 0.0
            for _ in 0..<40 {
                _ = score(cls, store, z, rows: rowsPerStep, rng: &rng)
                for r in 0..<rowsPerStep { hHat += cls.output.hHat(r, .ce) }
            }
            estimates.append(Estimators.mutualInformation(meanHHat: hHat / Double(40 * rowsPerStep), labels: n))
        }
        XCTAssertEqual(estimates[1], estimates[0], accuracy: 0.01 * estimates[0], "tree vs full Î_ce: \(estimates)")
        print("EstimatorTests: Î_ce full \(estimates[0]), tree \(estimates[1])")
    }

    func testEstimatorsAgainstExactMutualInformationAndMarginalKL() {
        let rowsPerStep = 256
        var rng = TestRNG(77)
        let (cls, store, z) = trainedClassifier(tree: false, rowsPerStep: rowsPerStep, rng: &rng)
        defer { z.deallocate() }
        let sm = cls.output
        // Evaluate on fresh draws: estimators, and the exact quantities on the same z.
        var hHat: [MIEstimator: Double] = [:]
        var exactMI = 0.0, exactMarginalKL = 0.0, exactFanoHHat = 0.0
        let chunks = 80
        for _ in 0..<chunks {
            let labels = score(cls, store, z, rows: rowsPerStep, rng: &rng)
            for e in MIEstimator.allCases { for r in 0..<rowsPerStep { hHat[e, default: 0] += sm.hHat(r, e) } }
            for r in 0..<rowsPerStep {
                let lq = logPosteriors(z + r * d)
                let logQz = logSumExp(lq) - log(Double(n))          // log q(z), the aggregate posterior
                let logPost = lq[Int(labels[r])] - logSumExp(lq)     // log q(x_i | z), eq. 10
                exactMI += lq[Int(labels[r])] - logQz                // log q(z|x_i) − log q(z)
                // Fano's Ĥ with the true posterior as the classifier: P_e = 1 − q(x_i|z).
                exactFanoHHat += Estimators.fano(crossEntropy: -logPost, labels: n)
                var zz = 0.0
                for k in 0..<d { zz += Double(z[r * d + k] * z[r * d + k]) }
                exactMarginalKL += logQz - (-0.5 * zz - Double(d) * 0.5 * log(2 * Double.pi))   // log q(z) − log p(z)
            }
        }
        let total = Double(chunks * rowsPerStep), logV = log(Double(n))
        exactMI /= total
        exactMarginalKL /= total
        let estimate = hHat.mapValues { Estimators.mutualInformation(meanHHat: $0 / total, labels: n) }
        let exactFano = Estimators.mutualInformation(meanHHat: exactFanoHHat / total, labels: n)
        let m = mu, s2 = Double(sigma * sigma)
        let meanKL = (0..<n).reduce(0.0) { acc, i in
            acc + 0.5 * (0..<d).reduce(0.0) { $0 + Double(m[i * d + $1] * m[i * d + $1]) + s2 - log(s2) - 1 }
        } / Double(n)
        let report = "exact MI \(exactMI), exact KL(q(z)‖p(z)) \(exactMarginalKL), mean KL \(meanKL), "
            + "Fano with the exact posterior \(exactFano), estimates \(estimate)"
        // The case is informative: well above 0, well below log V.
        XCTAssertGreaterThan(exactMI, 0.3 * logV, report)
        XCTAssertLessThan(exactMI, 0.9 * logV, report)
        // Sampled identity mean KL = MI + KL(q(z)‖p(z)) (appendix 7.1).
        XCTAssertEqual(exactMI + exactMarginalKL, meanKL, accuracy: 0.03 * meanKL, report)
        XCTAssertEqual(estimate[.entropy]!, exactMI, accuracy: 0.04 * exactMI, "entropy estimate within a few percent: \(report)")
        // E[CE] ≥ H(x|z): Î_ce is the Barber–Agakov lower bound (up to the sampled MI's noise, 0.02),
        // and with a converged classifier it is tight.
        XCTAssertLessThanOrEqual(estimate[.ce]!, exactMI + 0.02, "CE gives the Barber–Agakov lower bound: \(report)")
        XCTAssertGreaterThanOrEqual(estimate[.ce]!, 0.96 * exactMI, "a converged classifier's Î_ce is tight: \(report)")
        // Fano's Ĥ (Theorem 3.3) from the trained classifier against the same Ĥ from the exact
        // posterior q(x|z), computed independently (eq. 10) on the same z: both sides.
        XCTAssertEqual(estimate[.fano]!, exactFano, accuracy: 0.05 * exactFano, "Fano from the classifier vs the exact posterior: \(report)")
        XCTAssertGreaterThan(exactFano, 0.2 * logV, "the Fano case is informative: \(report)")
        let mdHat = meanKL - estimate[.entropy]!
        XCTAssertEqual(mdHat, exactMarginalKL, accuracy: 0.06 * exactMarginalKL, "MD̂ vs exact marginal KL: \(report)")
        print("EstimatorTests: \(report)")
    }
}
