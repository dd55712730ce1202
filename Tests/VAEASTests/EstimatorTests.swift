import XCTest
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
        let store = ParameterStore()
        let cls = AuxiliaryClassifier(latent: d, hidden: 64, layers: 2, activation: .tanh, labels: n,
                                      localRowCapacity: rowsPerStep, globalRowCapacity: rowsPerStep,
                                      comm: LocalCommunicator(), store: store, tree: tree)
        store.allocate()
        cls.initialize(store.values, seed: 3, scheme: .glorot)
        let sm = cls.softmax
        let adamHidden = Adam(count: store.count, lr: 3e-3)
        let z = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerStep * d)
        let layout = sm.layout(batch: rowsPerStep, samples: 1)
        for step in 0..<4000 {
            draw(rowsPerStep, &rng, z: z, labels: sm.targets)
            store.zeroGrads(); sm.zeroGrads()
            cls.forward(z: z, localRows: rowsPerStep, rows: rowsPerStep, layout: layout, params: store.values)
            cls.backward(z: z, localRows: rowsPerStep, ceScale: 1 / Float(rowsPerStep), miScale: 0, estimator: .ce,
                         layout: layout, params: store.values, grads: store.grads)
            let lr: Float = step < 3000 ? 3e-3 : 1e-3
            adamHidden.lr = lr
            adamHidden.update(store.values, grads: store.grads)
            sm.applyUpdate(lr: lr, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        }
        return (cls, store, z)
    }

    /// The tree reaches the full softmax's CE estimate where its splits are
    /// learnable: the labels go round the circle, so every subtree's leaf
    /// range is an arc of neighbouring posteriors.
    func testTreeMatchesFullSoftmaxEstimate() {
        let rowsPerStep = 256
        var estimates: [Double] = []
        for tree in [false, true] {
            var rng = TestRNG(77)
            let (cls, store, z) = trainedClassifier(tree: tree, rowsPerStep: rowsPerStep, rng: &rng)
            defer { z.deallocate() }
            let sm = cls.softmax
            let layout = sm.layout(batch: rowsPerStep, samples: 1)
            var hHat = 0.0
            for _ in 0..<40 {
                draw(rowsPerStep, &rng, z: z, labels: sm.targets)
                cls.forward(z: z, localRows: rowsPerStep, rows: rowsPerStep, layout: layout, params: store.values)
                for r in 0..<rowsPerStep { hHat += sm.hHat(r, .ce) }
            }
            estimates.append(log(Double(n)) - hHat / Double(40 * rowsPerStep))
        }
        XCTAssertEqual(estimates[1], estimates[0], accuracy: 0.04 * estimates[0], "tree vs full Î_ce: \(estimates)")
        print("EstimatorTests: Î_ce full \(estimates[0]), tree \(estimates[1])")
    }

    func testEstimatorsAgainstExactMutualInformationAndMarginalKL() {
        let rowsPerStep = 256
        var rng = TestRNG(77)
        let (cls, store, z) = trainedClassifier(tree: false, rowsPerStep: rowsPerStep, rng: &rng)
        defer { z.deallocate() }
        let sm = cls.softmax as! PartitionedSoftmax
        let layout = sm.layout(batch: rowsPerStep, samples: 1)
        // Evaluate on fresh draws: estimators, and the exact quantities on the same z.
        var hHat: [MIEstimator: Double] = [:]
        var exactMI = 0.0, exactMarginalKL = 0.0
        let chunks = 80
        for _ in 0..<chunks {
            draw(rowsPerStep, &rng, z: z, labels: sm.targets)
            cls.forward(z: z, localRows: rowsPerStep, rows: rowsPerStep, layout: layout, params: store.values)
            for e in MIEstimator.allCases { for r in 0..<rowsPerStep { hHat[e, default: 0] += sm.hHat(r, e) } }
            for r in 0..<rowsPerStep {
                let lq = logPosteriors(z + r * d)
                let logQz = logSumExp(lq) - log(Double(n))          // log q(z), the aggregate posterior
                exactMI += lq[Int(sm.targets[r])] - logQz            // log q(z|x_i) − log q(z)
                var zz = 0.0
                for k in 0..<d { zz += Double(z[r * d + k] * z[r * d + k]) }
                exactMarginalKL += logQz - (-0.5 * zz - Double(d) * 0.5 * log(2 * Double.pi))   // log q(z) − log p(z)
            }
        }
        let total = Double(chunks * rowsPerStep), logV = log(Double(n))
        exactMI /= total
        exactMarginalKL /= total
        let estimate = hHat.mapValues { logV - $0 / total }
        let m = mu, s2 = Double(sigma * sigma)
        let meanKL = (0..<n).reduce(0.0) { acc, i in
            acc + 0.5 * (0..<d).reduce(0.0) { $0 + Double(m[i * d + $1] * m[i * d + $1]) + s2 - log(s2) - 1 }
        } / Double(n)
        let report = "exact MI \(exactMI), exact KL(q(z)‖p(z)) \(exactMarginalKL), mean KL \(meanKL), estimates \(estimate)"
        // The case is informative: well above 0, well below log V.
        XCTAssertGreaterThan(exactMI, 0.3 * logV, report)
        XCTAssertLessThan(exactMI, 0.9 * logV, report)
        // Sampled identity mean KL = MI + KL(q(z)‖p(z)) (appendix 7.1).
        XCTAssertEqual(exactMI + exactMarginalKL, meanKL, accuracy: 0.03 * meanKL, report)
        XCTAssertEqual(estimate[.entropy]!, exactMI, accuracy: 0.04 * exactMI, "entropy estimate within a few percent: \(report)")
        XCTAssertLessThanOrEqual(estimate[.ce]!, exactMI + 0.02, "CE gives the Barber–Agakov lower bound: \(report)")
        XCTAssertLessThanOrEqual(estimate[.fano]!, exactMI + 0.02, "Fano's Ĥ bounds H(q(x|z)) from above: \(report)")
        for (e, v) in estimate { XCTAssertLessThanOrEqual(v, logV, "\(e) above log V: \(report)") }
        let mdHat = meanKL - estimate[.entropy]!
        XCTAssertEqual(mdHat, exactMarginalKL, accuracy: 0.06 * exactMarginalKL, "MD̂ vs exact marginal KL: \(report)")
        print("EstimatorTests: \(report)")
    }
}
