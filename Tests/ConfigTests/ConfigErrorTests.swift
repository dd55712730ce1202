import Foundation
import XCTest
import VAEASConfig

/// Every way a config can be wrong gives a message naming the key, the source and what was expected.
final class ConfigErrorTests: ConfigTestCase {
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
