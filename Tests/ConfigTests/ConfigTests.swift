import Foundation
import XCTest
import VAEASConfig

/// Defaults, files over defaults, --set, and the YAML round trip.
final class ConfigTests: ConfigTestCase {
    // MARK: defaults

    func testDefaultsEqualTable() {
        let c = TrainConfig.defaults
        XCTAssertEqual(c.data, DataConfig(name: "fashion-mnist", dir: "", binarize: .dynamic, limit: 0, testSplit: "test"))
        XCTAssertEqual(c.model, ModelConfig(latent: 40, hidden: 500, encLayers: 2, decLayers: 5, clsLayers: 2,
                                            activation: .tanh, initialization: .glorot))
        XCTAssertEqual(c.objective, ObjectiveConfig(kind: .vae, alpha: 1.0, beta: 1.0, labels: 0,
                                                    labelAssignment: .modulo, miEstimator: .entropy, softmax: .full,
                                                    leafOrder: .pca))
        XCTAssertEqual(c.train, TrainingConfig(epochs: 5, batch: 128, lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8,
                                               seed: 0, samples: 1, maxSteps: 0, logEvery: 0, checkpointEvery: 1))
        XCTAssertEqual(c.eval, EvalConfig(every: 1, batch: 500, iwSamples: 0, auThreshold: 0.01))
        XCTAssertNoThrow(try c.validate())
    }

    func testKeysInCanonicalOrderWithTypes() throws {
        XCTAssertEqual(TrainConfig.keys, [
            "data.name", "data.dir", "data.binarize", "data.limit", "data.subset", "data.subset_seed", "data.test_split",
            "model.latent", "model.hidden", "model.enc_layers", "model.dec_layers", "model.cls_layers",
            "model.activation", "model.init",
            "objective.kind", "objective.alpha", "objective.beta", "objective.labels",
            "objective.label_assignment", "objective.mi_estimator", "objective.md_estimator", "objective.softmax", "objective.kl_anneal_steps",
            "objective.leaf_order",
            "train.epochs", "train.batch", "train.lr", "train.cls_lr", "train.cls_steps", "train.warmup_steps",
            "train.lr_schedule", "train.clip_grad_norm", "train.beta1", "train.beta2", "train.eps", "train.seed",
            "train.samples", "train.max_steps", "train.log_every", "train.checkpoint_every",
            "train.checkpoint_steps", "train.checkpoint_minutes", "train.keep_checkpoints",
            "train.bucket_mb", "train.zero_stage", "train.divergence_factor", "train.stall_timeout",
            "eval.every", "eval.batch", "eval.iw_samples", "eval.au_threshold",
        ])
        let c = TrainConfig.defaults
        XCTAssertEqual(try c.value("model.latent"), .int(40))
        XCTAssertEqual(try c.value("train.lr"), .float(0.001))
        XCTAssertEqual(try c.value("data.name"), .string("fashion-mnist"))
        XCTAssertEqual(try c.value("objective.alpha"), .float(1.0))
        assertError(["unknown config key 'model.latnet'", "did you mean 'model.latent'"]) {
            _ = try c.value("model.latnet")
        }
    }

    func testEmbeddedYAMLParsesToDefaultsAndDocumentsEveryKey() throws {
        let yaml = TrainConfig.embeddedDefaultYAML
        XCTAssertEqual(try TrainConfig.parse(yaml: yaml, source: "embedded"), TrainConfig.defaults)
        XCTAssertEqual(try TrainConfig.load(path: nil), TrainConfig.defaults)
        let lines = yaml.split(separator: "\n")
        for key in TrainConfig.keys {
            let name = key.split(separator: ".")[1]
            guard let i = lines.firstIndex(where: { $0.hasPrefix("  \(name):") }) else {
                XCTFail("\(key) missing from embedded YAML"); continue
            }
            XCTAssertTrue(lines[i - 1].trimmingCharacters(in: .whitespaces).hasPrefix("#"), "\(key) has no comment")
        }
    }

    // MARK: merging

    func testPartialFileMergesOverDefaults() throws {
        let c = try parse("""
            # only a few keys
            model:
              latent: 8
              activation: relu
            train:
              lr: 3e-4
              epochs: 2
            """)
        XCTAssertEqual(c.model.latent, 8)
        XCTAssertEqual(c.model.activation, .relu)
        XCTAssertEqual(c.train.lr, 3e-4)
        XCTAssertEqual(c.train.epochs, 2)
        // untouched keys keep their defaults
        XCTAssertEqual(c.model.hidden, 500)
        XCTAssertEqual(c.train.batch, 128)
        XCTAssertEqual(c.data, TrainConfig.defaults.data)
        XCTAssertEqual(c.objective, TrainConfig.defaults.objective)
    }

    func testEmptyFileAndEmptySectionGiveDefaults() throws {
        XCTAssertEqual(try parse(""), TrainConfig.defaults)
        XCTAssertEqual(try parse("# nothing here\n"), TrainConfig.defaults)
        XCTAssertEqual(try parse("model:\n  # latent: 3\neval:\n"), TrainConfig.defaults)
    }

    func testFloatKeyAcceptsIntegerAndQuotedStringForStringKey() throws {
        let c = try parse("train:\n  lr: 1\ndata:\n  test_split: \"2023\"\n  dir: '/data/x y'\n")
        XCTAssertEqual(c.train.lr, 1.0)
        XCTAssertEqual(try c.value("train.lr"), .float(1.0))
        XCTAssertEqual(c.data.testSplit, "2023")
        XCTAssertEqual(c.data.dir, "/data/x y")
    }

    func testLoadFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vaeas-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("c.yaml").path
        try "eval:\n  batch: 250\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try TrainConfig.load(path: path).eval.batch, 250)

        let missing = dir.appendingPathComponent("nope.yaml").path
        assertError([missing, "not found"]) { _ = try TrainConfig.load(path: missing) }

        let bad = dir.appendingPathComponent("bad.yaml").path
        try "model:\n  latnet: 3\n".write(toFile: bad, atomically: true, encoding: .utf8)
        assertError(["unknown config key 'model.latnet' in \(bad)", "did you mean 'model.latent'?"]) {
            _ = try TrainConfig.load(path: bad)
        }
    }

    func testLoadDirectoryEmptyFileAndDevNull() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vaeas-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        assertError(["\(dir.path): is a directory, expected a YAML config file"]) {
            _ = try TrainConfig.load(path: dir.path)
        }
        // An empty file, like an empty YAML document, means every default; /dev/null reads as empty.
        let empty = dir.appendingPathComponent("empty.yaml").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        XCTAssertEqual(try TrainConfig.load(path: empty), TrainConfig.defaults)
        XCTAssertEqual(try TrainConfig.load(path: "/dev/null"), TrainConfig.defaults)
    }

    // MARK: --set

    func testSetEachType() throws {
        let c = try setting("model.latent=16", "train.lr=0.0003", "train.eps=1", "data.name=mnist",
                            "data.dir=/d/a=b", "train.seed=4294967295")
        XCTAssertEqual(c.model.latent, 16)
        XCTAssertEqual(c.train.lr, 0.0003)
        XCTAssertEqual(c.train.eps, 1.0)
        XCTAssertEqual(c.data.name, "mnist")
        XCTAssertEqual(c.data.dir, "/d/a=b", "everything after the first '=' is the value")
        XCTAssertEqual(c.train.seed, 4_294_967_295)
        XCTAssertEqual(try setting("data.dir=/x", "data.dir=").data.dir, "", "--set may clear a string")
    }

    func testSetOverridesFile() throws {
        var c = try parse("model:\n  latent: 8\n")
        try c.set("model.latent=12")
        XCTAssertEqual(c.model.latent, 12)
    }

    func testSetTypedValue() throws {
        var c = TrainConfig.defaults
        try c.set("objective.alpha", to: .int(2))
        XCTAssertEqual(c.objective.alpha, 2.0)
        try c.set("objective.kind", to: .string("vaeas"))
        XCTAssertEqual(c.objective.kind, .vaeas)
        assertError(["model.latent", "expected an integer in 1…4096", "the string 'x'"]) {
            try c.set("model.latent", to: .string("x"))
        }
        assertError(["train.lr", "expected a finite number > 0"]) { try c.set("train.lr", to: .float(.nan)) }
    }

    // MARK: round trip

    func testYAMLRoundTripsBitExact() throws {
        var c = TrainConfig.defaults
        let floats: [(String, Double)] = [
            ("train.lr", 3e-4), ("train.eps", 1e-8), ("objective.alpha", 0.1),
            ("objective.beta", 0.1 + 0.2), ("train.beta1", 1.0 / 3.0), ("train.beta2", 0.999_999_999_999_9),
        ]
        for (key, v) in floats { try c.set(key, to: .float(v)) }
        try c.set("data.dir", to: .string("odd \"dir\" \\ with: # yes\n\ttab é"))
        try c.set("data.test_split", to: .string("1e3"))
        try c.set("train.seed", to: .int(123_456_789))
        let text = c.yaml()
        let back = try TrainConfig.parse(yaml: text, source: "roundtrip")
        XCTAssertEqual(back, c, text)
        for (key, v) in floats {
            guard case let .float(got) = try back.value(key) else { return XCTFail(key) }
            XCTAssertEqual(got.bitPattern, v.bitPattern, "\(key) did not round-trip bit-exact")
        }
        // Subnormal and huge values too.
        try c.set("objective.alpha", to: .float(.leastNonzeroMagnitude))
        try c.set("objective.beta", to: .float(1.7976931348623157e308))
        XCTAssertEqual(try TrainConfig.parse(yaml: c.yaml(), source: "roundtrip"), c)
        // Defaults round-trip too.
        XCTAssertEqual(try TrainConfig.parse(yaml: TrainConfig.defaults.yaml(), source: "d"), TrainConfig.defaults)
    }

    func testYAMLListsEveryKeyInCanonicalOrder() {
        let text = TrainConfig.defaults.yaml()
        var position = text.startIndex
        var section = ""
        for key in TrainConfig.keys {
            let parts = key.split(separator: ".").map(String.init)
            if parts[0] != section {
                section = parts[0]
                guard let r = text.range(of: "\n\(section):\n", range: position..<text.endIndex) else {
                    return XCTFail("section \(section) missing or out of order")
                }
                position = r.upperBound
            }
            guard let r = text.range(of: "  \(parts[1]): ", range: position..<text.endIndex) else {
                return XCTFail("\(key) missing or out of order")
            }
            position = r.upperBound
        }
        XCTAssertTrue(text.contains("  eps: 1.0e-08\n"), "exponent floats carry a '.' for YAML 1.1 readers")
        XCTAssertTrue(text.contains("  name: \"fashion-mnist\"\n"))
    }

}
