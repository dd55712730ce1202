import XCTest
import _TestSupport
import Foundation
import VAEAS
import VAEASData
import VAEASConfig

final class EvaluationTests: XCTestCase {
    let shape = VAEShape(input: 784, latent: 6, hidden: 32, encoderLayers: 1, decoderLayers: 1, activation: .tanh)

    func feed(limit: Int) throws -> DataFeed {
        let d = try DatasetCatalog.load(name: "binarized-mnist", split: "test", directory: sharedData).prefix(limit)
        return DataFeed(dataset: d, binarization: .static, seed: 0, evaluation: true)
    }

    /// A briefly trained model, so that q(z|x) is informative (not the prior).
    func trainedStore() throws -> ParameterStore {
        var c = TrainConfig.defaults
        for s in ["data.binarize=static", "model.latent=6", "model.hidden=32", "model.enc_layers=1", "model.dec_layers=1",
                  "train.batch=50", "train.epochs=3", "eval.every=0"] { try c.set(s) }
        let data = try DatasetCatalog.load(name: "binarized-mnist", split: "train", directory: sharedData).prefix(1000)
        let loop = try TrainingLoop.make(config: c, train: data, test: nil, comm: LocalCommunicator(), output: nil)
        try loop.run()
        return loop.step.model.parameters
    }

    func testImportanceWeightedNLLIsBelowNegativeELBOAndEqualsItAtK1() throws {
        let store = try trainedStore()
        let f = try feed(limit: 1000)
        let k64 = Evaluator.likelihood(parameters: store, shape: shape, feed: f, comm: LocalCommunicator(), iwSamples: 64, seed: 1)
        XCTAssertLessThan(k64.nll, -k64.elbo, "IWAE bound must be tighter: \(k64.nll) vs \(-k64.elbo)")
        XCTAssertGreaterThan(k64.kl, 1, "the model is informative")
        // K = 1: −log w₁ is an unbiased estimate of −ELBO; over 1000 examples × 20 seeds they agree.
        var nll1 = 0.0, negElbo = 0.0
        for seed in 0..<20 {
            let r = Evaluator.likelihood(parameters: store, shape: shape, feed: f, comm: LocalCommunicator(), iwSamples: 1, seed: UInt32(seed))
            nll1 += r.nll; negElbo += -r.elbo
        }
        XCTAssertEqual(nll1 / 20, negElbo / 20, accuracy: 0.005 * negElbo / 20)
        // Chunking K does not change the estimate.
        let chunked = Evaluator.likelihood(parameters: store, shape: shape, feed: f, comm: LocalCommunicator(), iwSamples: 64, seed: 1, chunkRows: 20)
        XCTAssertEqual(chunked.nll, k64.nll, accuracy: 1e-4)
    }

    /// μ_d = s_d · h₁(x) + b: Var_x(μ_d) = s_d² Var_x(h₁), set by construction around the threshold.
    func testActiveUnitsCountDimsWithKnownVariance() throws {
        let f = try feed(limit: 500)
        let vae = VAE(shape: shape, capacity: 500, samples: 1, seed: 4)
        let idx = (0..<Int32(500)).map { $0 }
        let x = UnsafeMutablePointer<Float>.allocate(capacity: 500 * 784)
        defer { x.deallocate() }
        idx.withUnsafeBufferPointer { f.fill(x, indices: $0, epoch: 0) }
        vae.encode(x, n: 500)
        var mean = 0.0, sq = 0.0
        for i in 0..<500 { let h = Double(vae.encoder.output[i * 32]); mean += h; sq += h * h }
        let varH = sq / 500 - (mean / 500) * (mean / 500)
        XCTAssertGreaterThan(varH, 1e-4)
        let targets: [Double] = [0.0001, 0.004, 0.008, 0.02, 0.3, 2.5]   // three ≥ 0.01
        let w = vae.store.values + vae.muHead.weight, b = vae.store.values + vae.muHead.bias
        for d in 0..<6 {
            for j in 0..<32 { w[d * 32 + j] = 0 }
            w[d * 32] = Float((targets[d] / varH).squareRoot())
            b[d] = 0.3
        }
        let r = Evaluator.likelihood(parameters: vae.store, shape: shape, feed: f, comm: LocalCommunicator(), iwSamples: 1, seed: 0)
        XCTAssertEqual(r.activeUnits, 3)
        for d in 0..<6 { XCTAssertEqual(r.muVariance[d], targets[d], accuracy: 0.01 * targets[d]) }
    }

    func testMonteCarloMIPlusMDIsTheLogRatioAndMatchesADoubleLoop() throws {
        let store = try trainedStore()
        let f = try feed(limit: 300)
        let s = 7
        let r = Evaluator.monteCarloMI(parameters: store, shape: shape, feed: f, comm: LocalCommunicator(), samples: s, seed: 3)
        // Direct double loop over the same draws (same seed streams as the estimator).
        let chosen = Array(Philox(seed: 3, purpose: .permutation).permutation(f.count, stream: 0xE571)[0..<s])
        let vae = VAE(shape: shape, capacity: s, samples: 1)
        var eps = [Float](repeating: 0, count: s * 6)
        for slot in vae.store.slots {
            let src = store.slot(named: slot.name)!
            (vae.store.values + slot.offset).update(from: store.values + src.offset, count: slot.count)
        }
        let x = UnsafeMutablePointer<Float>.allocate(capacity: s * 784)
        defer { x.deallocate() }
        chosen.withUnsafeBufferPointer { f.fill(x, indices: $0, epoch: 0) }
        vae.encode(x, n: s)
        let rng = Philox(seed: 3, purpose: .evaluationNoise)
        eps.withUnsafeMutableBufferPointer { e in
            for (i, g) in chosen.enumerated() { rng.fillNormal(e.baseAddress! + i * 6, count: 6, c1: UInt32(g), c2: 1, c3: 0) }
        }
        vae.reparameterize(eps: eps, n: s, samples: 1)
        func logQ(_ j: Int, _ k: Int) -> Double {
            var acc = 0.0
            for d in 0..<6 {
                let z = Double(vae.z[j * 6 + d]), m = Double(vae.mu[k * 6 + d]), lv = Double(vae.logvar[k * 6 + d])
                acc += -0.5 * (z - m) * (z - m) / exp(lv) - 0.5 * lv - 0.5 * log(2 * Double.pi)
            }
            return acc
        }
        var mi = 0.0, md = 0.0
        for j in 0..<s {
            let terms = (0..<s).map { logQ(j, $0) }
            let m = terms.max()!
            let logQhat = m + log(terms.reduce(0) { $0 + exp($1 - m) }) - log(Double(s))
            var zz = 0.0
            for d in 0..<6 { zz += Double(vae.z[j * 6 + d] * vae.z[j * 6 + d]) }
            mi += terms[j] - logQhat
            md += logQhat - (-0.5 * zz - 3 * log(2 * Double.pi))
        }
        XCTAssertEqual(r.mi, mi / Double(s), accuracy: 1e-4)
        XCTAssertEqual(r.md, md / Double(s), accuracy: 1e-4)
    }

    /// Figure 3's check: MI + MD = mean_j[log q(z_j|x_j) − log p(z_j)] is a
    /// Monte Carlo estimate of the analytic mean KL over the same S points
    /// (computed independently, from μ and log σ²), so they agree as S grows.
    func testMonteCarloMIPlusMDEstimatesTheAnalyticMeanKL() throws {
        let store = try trainedStore()
        let f = try feed(limit: 1000)
        let r = Evaluator.monteCarloMI(parameters: store, shape: shape, feed: f, comm: LocalCommunicator(), samples: 1000, seed: 5)
        XCTAssertGreaterThan(r.meanKL, 1, "the model is informative")
        XCTAssertEqual(r.mi + r.md, r.meanKL, accuracy: 0.03 * r.meanKL, "MI \(r.mi) + MD \(r.md) vs mean KL \(r.meanKL)")
    }
}

/// `CheckpointInput` (the library half of `eval`/`estimate`, issue #22): where a
/// checkpoint's data is looked for, without the CLI.
final class CheckpointDataLocationTests: XCTestCase {
    func testTheRunsRecordedDataDirComesFirstAndDataDirAlone() throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("vaeas-ci-\(getpid())").path
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: run) }
        try "data: {name: binarized-mnist, dir: /somewhere/recorded}\n".write(toFile: run + "/config.yaml", atomically: true, encoding: .utf8)
        let recorded = CheckpointInput.locations(dataDir: nil, checkpoint: run + "/model.safetensors", dataset: "binarized-mnist")
        XCTAssertEqual(recorded.first, DataLocation("/somewhere/recorded", origin: "data.dir in \(run)/config.yaml"))
        let explicit = CheckpointInput.locations(dataDir: "/given", checkpoint: run + "/model.safetensors", dataset: "binarized-mnist")
        XCTAssertEqual(explicit, [DataLocation("/given", origin: "--data-dir")])
        // Given, it is the only place: a missing file there is an error naming it, not a fallback elsewhere.
        XCTAssertThrowsError(try CheckpointInput.loadSplit(dataset: "binarized-mnist", split: "test", dataDir: run,
                                                           checkpoint: run + "/model.safetensors")) { error in
            XCTAssertTrue("\(error)".contains(run), "\(error)")
        }
    }
}
