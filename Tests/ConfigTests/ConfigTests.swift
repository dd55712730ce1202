import Foundation
import XCTest
import VAEASConfig

final class ConfigTests: XCTestCase {
    // MARK: helpers

    /// Runs `body`, requires a ConfigError, and checks its description contains every fragment.
    private func assertError(_ fragments: [String], key: String? = nil,
                             file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected a ConfigError containing \(fragments)", file: file, line: line)
        } catch let error as ConfigError {
            for f in fragments {
                XCTAssertTrue(error.description.contains(f),
                              "error «\(error.description)» does not contain «\(f)»", file: file, line: line)
            }
            if let key { XCTAssertEqual(error.key, key, file: file, line: line) }
        } catch {
            XCTFail("expected ConfigError, got \(error)", file: file, line: line)
        }
    }

    private func parse(_ yaml: String) throws -> TrainConfig {
        try TrainConfig.parse(yaml: yaml, source: "test.yaml")
    }

    private func setting(_ assignments: String...) throws -> TrainConfig {
        var c = TrainConfig.defaults
        for a in assignments { try c.set(a) }
        return c
    }

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
            "data.name", "data.dir", "data.binarize", "data.limit", "data.test_split",
            "model.latent", "model.hidden", "model.enc_layers", "model.dec_layers", "model.cls_layers",
            "model.activation", "model.init",
            "objective.kind", "objective.alpha", "objective.beta", "objective.labels",
            "objective.label_assignment", "objective.mi_estimator", "objective.softmax", "objective.leaf_order",
            "train.epochs", "train.batch", "train.lr", "train.beta1", "train.beta2", "train.eps", "train.seed",
            "train.samples", "train.max_steps", "train.log_every", "train.checkpoint_every",
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

    // MARK: errors: keys

    func testUnknownKeySuggestsByEditDistance() {
        assertError(["unknown config key 'model.latnet' in test.yaml", "did you mean 'model.latent'?"],
                    key: "model.latnet") { _ = try self.parse("model:\n  latnet: 3\n") }
        assertError(["unknown config key 'model.latnet' (from --set)", "did you mean 'model.latent'?"]) {
            _ = try self.setting("model.latnet=3")
        }
        assertError(["unknown config key 'modle.latent'", "did you mean 'model.latent'?"]) {
            _ = try self.setting("modle.latent=3")
        }
        // right key name, wrong section
        assertError(["unknown config key 'train.alpha'", "did you mean 'objective.alpha'?"]) {
            _ = try self.setting("train.alpha=3")
        }
        assertError(["unknown config key 'latent'", "did you mean 'model.latent'?"]) {
            _ = try self.setting("latent=3")
        }
    }

    func testUnknownKeyWithoutSuggestionListsSectionKeys() {
        assertError(["unknown config key 'model.dropout'", "keys in section 'model':",
                     "latent, hidden, enc_layers, dec_layers, cls_layers, activation"]) {
            _ = try self.parse("model:\n  dropout: 0.5\n")
        }
    }

    func testUnknownSection() {
        assertError(["unknown config section 'modle' in test.yaml", "did you mean 'model'?"], key: "modle") {
            _ = try self.parse("modle:\n  latent: 3\n")
        }
        assertError(["unknown config section 'optimizer'", "sections are data, model, objective, train, eval"]) {
            _ = try self.parse("optimizer:\n  lr: 3\n")
        }
        assertError(["unknown config section 'model.latent'", "nested"]) {
            _ = try self.parse("model.latent: 3\n")
        }
    }

    // MARK: errors: types and values

    func testWrongTypeFromSet() {
        assertError(["train.batch: expected an integer ≥ 1, got 'abc' (from --set)"], key: "train.batch") {
            _ = try self.setting("train.batch=abc")
        }
        assertError(["train.lr", "expected a finite number > 0", "got 'fast'", "(from --set)"]) {
            _ = try self.setting("train.lr=fast")
        }
    }

    func testIntegerGivenAsFloat() {
        assertError(["model.latent", "expected an integer in 1…4096", "'1.5'", "not an integer"]) {
            _ = try self.parse("model:\n  latent: 1.5\n")
        }
        assertError(["train.epochs", "expected an integer ≥ 1", "'1e3'", "not an integer", "write it as 1000"]) {
            _ = try self.parse("train:\n  epochs: 1e3\n")
        }
        assertError(["train.epochs", "'1e3'", "not an integer", "(from --set)"]) {
            _ = try self.setting("train.epochs=1e3")
        }
        assertError(["model.hidden", "quoted string '5'"]) { _ = try self.parse("model:\n  hidden: \"5\"\n") }
    }

    func testBooleanNullListAndMapWhereScalarExpected() {
        assertError(["train.epochs", "expected an integer ≥ 1", "'true'", "boolean"]) {
            _ = try self.parse("train:\n  epochs: true\n")
        }
        assertError(["data.test_split", "'yes'", "boolean", "quote"]) {
            _ = try self.parse("data:\n  test_split: yes\n")
        }
        assertError(["data.dir", "empty value", "\"\""]) { _ = try self.parse("data:\n  dir:\n") }
        assertError(["train.lr", "expected a finite number > 0", "got a list", "line 2"]) {
            _ = try self.parse("train:\n  lr: [0.1, 0.2]\n")
        }
        assertError(["model.latent", "expected an integer in 1…4096", "got a mapping"]) {
            _ = try self.parse("model:\n  latent:\n    value: 3\n")
        }
    }

    func testDocumentAndSectionShapes() {
        assertError(["test.yaml", "expected a mapping of sections", "a list"]) {
            _ = try self.parse("- model\n- train\n")
        }
        assertError(["test.yaml", "expected a mapping of sections", "scalar 'hello'"]) {
            _ = try self.parse("hello\n")
        }
        assertError(["model:", "expected a mapping of keys under section 'model'", "scalar '3'", "test.yaml"],
                    key: "model") { _ = try self.parse("model: 3\n") }
        assertError(["section 'train'", "a list"]) { _ = try self.parse("train:\n  - lr: 1\n") }
    }

    func testYAMLSyntaxErrorHasLine() {
        assertError(["test.yaml", "YAML syntax error", "3:"]) {
            _ = try self.parse("model:\n  latent: 3\n hidden: [1,\n")
        }
        assertError(["test.yaml", "YAML syntax error"]) { _ = try self.parse("model: {latent: 3\n") }
    }

    func testMalformedSet() {
        assertError(["--set expects section.key=value", "'model.latent'", "no '='"]) {
            _ = try self.setting("model.latent")
        }
        assertError(["--set expects section.key=value", "'=3'", "empty key"]) { _ = try self.setting("=3") }
    }

    func testOutOfRange() {
        assertError(["model.latent: expected an integer in 1…4096, got 5000 (from --set)"]) {
            _ = try self.setting("model.latent=5000")
        }
        assertError(["model.latent", "in 1…4096, got 0", "test.yaml, line 2"]) {
            _ = try self.parse("model:\n  latent: 0\n")
        }
        assertError(["data.limit", "expected an integer ≥ 0, got -1"]) { _ = try self.setting("data.limit=-1") }
        assertError(["train.beta1", "expected a number in [0, 1), got 1.0"]) { _ = try self.setting("train.beta1=1") }
        assertError(["train.lr", "expected a finite number > 0, got 0.0"]) { _ = try self.setting("train.lr=0") }
        assertError(["objective.alpha", "expected a finite number ≥ 0, got -0.5"]) {
            _ = try self.setting("objective.alpha=-0.5")
        }
        assertError(["train.seed", "expected an integer in 0…4294967295, got 4294967296"]) {
            _ = try self.setting("train.seed=4294967296")
        }
        assertError(["train.epochs", "out of range"]) { _ = try self.setting("train.epochs=99999999999999999999") }
        assertError(["model.cls_layers", "in 0…64, got 65"]) { _ = try self.setting("model.cls_layers=65") }
        XCTAssertEqual(try? setting("model.cls_layers=0").model.clsLayers, 0)
        assertError(["data.test_split", "expected a non-empty string", "got ''"]) {
            _ = try self.setting("data.test_split=")
        }
    }

    func testNonFiniteFloats() {
        assertError(["objective.beta", "finite", "'.nan'", "NaN and infinity"]) {
            _ = try self.parse("objective:\n  beta: .nan\n")
        }
        assertError(["train.lr", "finite", "'.inf'"]) { _ = try self.parse("train:\n  lr: .inf\n") }
        assertError(["train.eps", "'inf'", "(from --set)"]) { _ = try self.setting("train.eps=inf") }
        assertError(["train.lr", "'1e999'", "infinity"]) { _ = try self.setting("train.lr=1e999") }
    }

    func testUnknownEnumValueListsAllowed() {
        assertError(["model.activation", "expected one of tanh, relu, got 'sigmoid'"]) {
            _ = try self.setting("model.activation=sigmoid")
        }
        assertError(["data.name",
                     "expected one of binarized-mnist, mnist, fashion-mnist, omniglot-small, got 'cifar'",
                     "test.yaml"]) { _ = try self.parse("data:\n  name: cifar\n") }
        assertError(["objective.mi_estimator", "one of entropy, ce, fano"]) {
            _ = try self.setting("objective.mi_estimator=kl")
        }
    }

    func testDuplicateKeys() {
        assertError(["model.latent", "given twice", "line 2", "line 3"], key: "model.latent") {
            _ = try self.parse("model:\n  latent: 3\n  latent: 4\n")
        }
        assertError(["model", "given twice"], key: "model") {
            _ = try self.parse("model:\n  latent: 3\nmodel:\n  hidden: 4\n")
        }
    }

    // MARK: cross-key validation

    func testValidateTreeSoftmaxNeedsNonEntropyEstimator() throws {
        let bad = try setting("objective.kind=vaeas", "objective.softmax=tree")
        assertError(["objective.softmax", "objective.mi_estimator", "entropy", "tree"], key: "objective.softmax") {
            try bad.validate()
        }
        XCTAssertNoThrow(try setting("objective.kind=vaeas", "objective.softmax=tree",
                                     "objective.mi_estimator=ce").validate())
        XCTAssertNoThrow(try setting("objective.kind=vaeas", "objective.softmax=tree",
                                     "objective.mi_estimator=fano").validate())
        XCTAssertNoThrow(try setting("objective.kind=vae", "objective.softmax=tree").validate(),
                         "plain VAE ignores the label softmax")
        XCTAssertNoThrow(try setting("objective.kind=vaeas").validate())
    }

    // MARK: internals

    func testFloatFormattingAndEditDistance() {
        XCTAssertEqual(formatFloat(1e-8), "1.0e-08")
        XCTAssertEqual(formatFloat(0.1), "0.1")
        XCTAssertEqual(formatFloat(1), "1.0")
        XCTAssertEqual(ConfigValue.float(3e-4).description, "0.0003")
        XCTAssertEqual(editDistance("latnet", "latent"), 1)
        XCTAssertEqual(editDistance("", "abc"), 3)
        XCTAssertTrue(isFloatLiteral(".5") && isFloatLiteral("1.") && isFloatLiteral("-2e+3"))
        XCTAssertFalse(isFloatLiteral("e3") || isFloatLiteral("1e") || isFloatLiteral(".") || isFloatLiteral("12"))
    }
}
