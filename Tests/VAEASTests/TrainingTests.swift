import XCTest
import _TestSupport
import SafeTensors
import VAEAS
import VAEASConfig
import VAEASData

final class TrainingTests: XCTestCase {
    func smallConfig(_ sets: [String] = []) throws -> TrainConfig {
        var c = TrainConfig.defaults
        for s in ["data.name=binarized-mnist", "data.dir=\(sharedData)", "data.limit=1000", "model.latent=8",
                  "model.hidden=64", "model.enc_layers=1", "model.dec_layers=2", "train.batch=50", "train.epochs=2",
                  "eval.every=0"] + sets {
            try c.set(s)
        }
        try c.validate()
        return c
    }

    func load(_ c: TrainConfig) throws -> Dataset {
        try DatasetCatalog.load(name: c.data.name, split: "train", directory: c.data.dir).prefix(c.data.limit)
    }

    /// A short in-process run on real binarized MNIST: the loss falls.
    func testLossFallsOnBinarizedMNIST() throws {
        let c = try smallConfig()
        let loop = try TrainingLoop.make(config: c, train: try load(c), test: nil, comm: LocalCommunicator(), output: nil)
        try loop.run()
        let losses = loop.history.map { r -> Double in
            guard case .double(let v)? = r.fields.first(where: { $0.0 == "loss" })?.1 else { return .nan }
            return v
        }
        XCTAssertEqual(losses.count, 2)
        XCTAssertLessThan(losses[1], losses[0] - 20, "loss \(losses)")
        XCTAssertLessThan(losses[1], 400)   // 784 pixels at p = ½ would be 543 nats
    }

    /// Same seed, same run; another seed, another run.
    func testDeterministicPerSeed() throws {
        func run(_ seed: Int) throws -> Double {
            let c = try smallConfig(["train.seed=\(seed)", "train.max_steps=5"])
            let loop = try TrainingLoop.make(config: c, train: try load(c), test: nil, comm: LocalCommunicator(), output: nil)
            try loop.run()
            return loop.step.parameterSum
        }
        XCTAssertEqual(try run(3), try run(3))
        XCTAssertNotEqual(try run(3), try run(4))
    }

    func testNonFiniteParametersStopTheStep() throws {
        let c = try smallConfig()
        let step = try DataParallelStep.make(config: c, train: try load(c), comm: LocalCommunicator())
        let p = step.model.parameters
        p.values[p.slot(named: "decoder.out.bias")!.offset] = .nan
        let perm = step.permutation(epoch: 1)
        XCTAssertThrowsError(try perm.withUnsafeBufferPointer { try step(UnsafeBufferPointer(rebasing: $0[0..<50]), epoch: 1) }) {
            XCTAssertTrue("\($0)".contains("non-finite loss at epoch 1, step 1"), "\($0)")
        }
    }

    func testDynamicBinarizationIsPerSampleNotPerBatch() throws {
        let c = try smallConfig()
        let feed = DataFeed(dataset: try load(c), binarization: .dynamic, seed: 9)
        let d = feed.dimension
        var a = [Float](repeating: 0, count: 2 * d), b = [Float](repeating: 0, count: d)
        let both: [Int32] = [5, 17], one: [Int32] = [17]
        both.withUnsafeBufferPointer { i in a.withUnsafeMutableBufferPointer { feed.fill($0.baseAddress!, indices: i, epoch: 3) } }
        one.withUnsafeBufferPointer { i in b.withUnsafeMutableBufferPointer { feed.fill($0.baseAddress!, indices: i, epoch: 3) } }
        XCTAssertEqual(Array(a[d..<(2 * d)]), b, "sample 17 must binarize the same whatever batch it is in")
        // Binarized MNIST's pixels are 0 or 255, so the Bernoulli draw equals the static threshold.
        let px = feed.dataset.images.pixels[(17 * d)..<(18 * d)].map { $0 >= 128 ? Float(1) : 0 }
        XCTAssertEqual(b, px)
    }

    func testDynamicBinarizationMeanMatchesIntensity() {
        // Grey pixels of 64: P(1) = 64/255.
        let img = IDXImages(path: "mem", count: 1, rows: 100, cols: 100, pixels: [UInt8](repeating: 64, count: 10_000))
        let feed = DataFeed(dataset: Dataset(name: "grey", split: "train", images: img, labels: nil), binarization: .dynamic, seed: 1)
        var x = [Float](repeating: 0, count: 10_000)
        let idx: [Int32] = [0]
        idx.withUnsafeBufferPointer { i in x.withUnsafeMutableBufferPointer { feed.fill($0.baseAddress!, indices: i, epoch: 1) } }
        XCTAssertEqual(Double(x.reduce(0, +)) / 10_000, 64.0 / 255, accuracy: 0.015)
    }

    func testCheckpointRoundTripsNamesShapesAndMetadata() throws {
        let shape = VAEShape(input: 784, latent: 5, hidden: 7, encoderLayers: 2, decoderLayers: 3, activation: .relu)
        let vae = VAE(shape: shape, capacity: 1, samples: 1, seed: 2)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(getpid()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let spec = ModelSpec(shape: shape, initialization: .glorot, seed: 2, objective: .vae, alpha: 1, beta: 1, classifier: nil)
        let meta = CheckpointMetadata(model: spec, dataset: "binarized-mnist", binarize: .static, trainSamples: 100)
        try Checkpoint.writer(for: vae.store, metadata: meta.entries).write(to: path)
        let file = try SafeTensorsFile.load(path: path)
        XCTAssertEqual(try CheckpointMetadata(file), meta, "the metadata reads back as written")
        XCTAssertEqual(file.names, [
            "encoder.layers.0.weight", "encoder.layers.0.bias", "encoder.layers.1.weight", "encoder.layers.1.bias",
            "encoder.mu.weight", "encoder.mu.bias", "encoder.logvar.weight", "encoder.logvar.bias",
            "decoder.layers.0.weight", "decoder.layers.0.bias", "decoder.layers.1.weight", "decoder.layers.1.bias",
            "decoder.layers.2.weight", "decoder.layers.2.bias", "decoder.out.weight", "decoder.out.bias",
        ])
        XCTAssertEqual(try file.shape(of: "encoder.layers.0.weight"), [7, 784])
        XCTAssertEqual(try file.shape(of: "encoder.mu.weight"), [5, 7])
        XCTAssertEqual(try file.shape(of: "decoder.layers.0.weight"), [7, 5])
        XCTAssertEqual(try file.shape(of: "decoder.out.weight"), [784, 7])
        XCTAssertEqual(try Checkpoint.shape(of: file), shape)
        let other = VAE(shape: shape, capacity: 1, samples: 1)
        try Checkpoint.load(file, into: other.store)
        XCTAssertEqual(Array(other.store.valueBuffer), Array(vae.store.valueBuffer))
        let wrong = VAE(shape: VAEShape(input: 784, latent: 6, hidden: 7, encoderLayers: 2, decoderLayers: 3, activation: .relu),
                        capacity: 1, samples: 1)
        XCTAssertThrowsError(try Checkpoint.load(file, into: wrong.store)) {
            XCTAssertTrue("\($0)".contains("encoder.mu.weight' has shape [5, 7], expected [6, 7]"), "\($0)")
        }
    }
}

final class InitializationTests: XCTestCase {
    func testSchemesDrawWithinTheirBounds() {
        for scheme in Initialization.allCases {
            let store = ParameterStore(ParameterTable([.init(name: "l", inFeatures: 300, outFeatures: 100, initStream: 0)]))
            let l = Linear("l", store: store)
            l.initialize(store.values, rng: Philox(seed: 1, purpose: .parameterInit), tensorID: 0, scheme: scheme)
            let w = UnsafeBufferPointer(start: store.values + l.weight, count: 30_000)
            let b = UnsafeBufferPointer(start: store.values + l.bias, count: 100)
            let bound: Float = scheme == .glorot ? (6.0 / 400).squareRoot() : 1 / Float(300).squareRoot()
            XCTAssertLessThanOrEqual(w.map(abs).max()!, bound)
            XCTAssertGreaterThan(w.map(abs).max()!, 0.98 * bound, "\(scheme) should fill its range")
            let variance = w.reduce(0.0) { $0 + Double($1 * $1) } / 30_000
            XCTAssertEqual(variance, Double(bound * bound) / 3, accuracy: 0.05 * Double(bound * bound) / 3)
            if scheme == .glorot { XCTAssertTrue(b.allSatisfy { $0 == 0 }) } else { XCTAssertLessThanOrEqual(b.map(abs).max()!, bound) }
        }
    }
}
