import Foundation
import XCTest

/// One training step against PyTorch (llm.c's test_gpt2): `vaeas-mpi-check step-dump`
/// writes a checkpoint and one step's inputs, losses and gradients; scripts/torch_crosscheck.py
/// rebuilds the model from the checkpoint in PyTorch (tools/vaeas_tools/torch_ref/model.py, float64),
/// recomputes the step with autograd and compares every loss term and every gradient tensor,
/// by name and shape. Needs python3 with torch (scripts/setup.sh installs it).
final class TorchCrossCheckTests: XCTestCase {
    var checkBinary: String {
        URL(fileURLWithPath: CLI.binary).deletingLastPathComponent().appendingPathComponent("vaeas-mpi-check").path
    }
    let script = CLI.repositoryRoot.appendingPathComponent("scripts/torch_crosscheck.py").path
    /// torch_crosscheck.py's TOLERANCE (float32 against float64; the script says why).
    let tolerance = 1e-4

    /// Small shapes: latent 8, hidden 32, two encoder and decoder layers, batch 16 of 200 samples.
    let common = ["data.name=binarized-mnist", "data.limit=200", "model.latent=8", "model.hidden=32",
                  "model.enc_layers=2", "model.dec_layers=2", "train.batch=16"]
    let vaeas = ["objective.kind=vaeas", "model.cls_layers=1", "train.samples=2"]

    /// The checkpoint's tensor names for `common` (and one classifier layer, then `output`).
    func expectedTensors(output: String?) -> Set<String> {
        var layers = ["encoder.layers.0", "encoder.layers.1", "encoder.mu", "encoder.logvar",
                      "decoder.layers.0", "decoder.layers.1", "decoder.out"]
        if let output { layers += ["classifier.layers.0", output] }
        return Set(layers.flatMap { ["\($0).weight", "\($0).bias"] })
    }

    /// Why `import torch` failed in python3 (nil: it works); asked once per test run.
    static var torchProblem: String?? = nil

    /// Fails (rather than skips) without torch: CI installs it through scripts/setup.sh.
    func requireTorch() throws -> Bool {
        if TorchCrossCheckTests.torchProblem == nil {
            let r = try CLI.run(["python3", "-c", "import torch; print(torch.__version__)"], executable: "/usr/bin/env")
            TorchCrossCheckTests.torchProblem = .some(r.status == 0 ? nil : String(r.output.suffix(300)))
        }
        if let problem = TorchCrossCheckTests.torchProblem! {
            XCTFail("PyTorch is not importable by python3: run scripts/setup.sh (it installs torch==2.13.0+cpu; "
                    + "CI runs it through scripts/test.sh). \(problem)")
            return false
        }
        return true
    }

    /// Runs step-dump with `sets`; returns the directory holding model.safetensors and step.safetensors.
    func dump(_ name: String, steps: Int = 0, _ sets: [String]) throws -> String {
        let out = CLI.temporaryDirectory("torch-\(name)")
        let args = ["step-dump", "--data-dir", CLI.sharedData, "--out", out, "--steps", "\(steps)"]
            + (common + sets).flatMap { ["--set", $0] }
        let r = try CLI.run(args, executable: checkBinary)
        XCTAssertEqual(r.status, 0, "step-dump \(name): \(r.output)")
        return out
    }

    /// torch_crosscheck.py on a dump: its exit status and JSON line.
    func crossCheck(_ dir: String, _ extra: [String] = []) throws -> (status: Int32, json: [String: Any], output: String) {
        let r = try CLI.run(["python3", script, dir + "/model.safetensors", dir + "/step.safetensors"] + extra,
                            executable: "/usr/bin/env")
        let line = r.stdout.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
        return (r.status, json, r.output)
    }

    /// Dumps, cross-checks, and asserts exit 0 with every expected tensor and loss term named and within tolerance.
    func check(_ name: String, steps: Int = 0, _ sets: [String], output: String?, miGradient: Bool,
               file: StaticString = #filePath, line: UInt = #line) throws {
        guard try requireTorch() else { return }
        let dir = try dump(name, steps: steps, sets)
        let (status, json, text) = try crossCheck(dir)
        print("torch cross-check \(name): \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        XCTAssertEqual(status, 0, "\(name): \(text)", file: file, line: line)
        XCTAssertEqual(json["ok"] as? Bool, true, "\(name): \(text)", file: file, line: line)
        let grads = json["grads"] as? [String: Double] ?? [:]
        XCTAssertEqual(Set(grads.keys), Set(expectedTensors(output: output).map { "grad." + $0 }),
                       "\(name): gradient tensors compared", file: file, line: line)
        let losses = json["losses"] as? [String: Double] ?? [:]
        XCTAssertEqual(Set(losses.keys), Set(["recon", "kl", "objective"] + (output == nil ? [] : ["ce", "hhat"])),
                       "\(name): loss terms compared", file: file, line: line)
        for (k, e) in grads.merging(losses, uniquingKeysWith: max) {
            XCTAssertLessThanOrEqual(e, tolerance, "\(name): \(k)", file: file, line: line)
        }
        // With α ≠ β the Î gradient must be large against the tolerance, or an error in it would pass unseen.
        let share = json["mi_share"] as? [String: Double] ?? [:]
        if miGradient {
            XCTAssertEqual(share.count, 8, "\(name): Î's share of the encoder gradients", file: file, line: line)
            XCTAssertGreaterThan(share.values.min() ?? 0, 10 * tolerance,
                                 "\(name): the Î term barely moves the encoder gradients: \(share)", file: file, line: line)
        } else {
            XCTAssertTrue(share.isEmpty, "\(name): no Î term expected: \(share)", file: file, line: line)
        }
    }

    func testVAE() throws {
        try check("vae", ["objective.kind=vae", "data.binarize=dynamic"], output: nil, miGradient: false)
    }

    func testFullSoftmaxEntropy() throws {
        try check("full-entropy", vaeas + ["objective.labels=50", "objective.alpha=0.5", "objective.beta=1.5",
                                           "objective.mi_estimator=entropy", "data.binarize=static"],
                  output: "classifier.out", miGradient: true)
    }

    /// Binarized MNIST's pixels are 0 or 255, so its dynamic binarization draws nothing;
    /// Omniglot's grey levels make it random, and input.x must be exactly what was fed.
    func testFullSoftmaxCE() throws {
        try check("full-ce", vaeas + ["objective.labels=100", "objective.alpha=0.5", "objective.beta=1.5",
                                      "objective.mi_estimator=ce", "data.name=omniglot-small", "data.binarize=dynamic",
                                      "model.init=pytorch", "objective.label_assignment=random"],
                  output: "classifier.out", miGradient: true)
    }

    /// Fano's Ĥ peaks where the classifier is uniform (its Î gradient vanishes at
    /// initialisation), so the Fano cases first train 30 steps on the batch.
    func testFullSoftmaxFano() throws {
        try check("full-fano", steps: 30, vaeas + ["objective.labels=200", "objective.alpha=0.5", "objective.beta=1.5",
                                                   "objective.mi_estimator=fano", "data.binarize=static", "train.lr=0.01"],
                  output: "classifier.out", miGradient: true)
    }

    func testTreeCE() throws {
        // V = 77: uneven splits; PCA leaf order (the default) renames the labels.
        try check("tree-ce", vaeas + ["objective.softmax=tree", "objective.labels=77", "objective.alpha=2", "objective.beta=1",
                                      "objective.mi_estimator=ce", "data.binarize=static"],
                  output: "classifier.tree", miGradient: true)
    }

    func testTreeFano() throws {
        try check("tree-fano", steps: 30, vaeas + ["objective.softmax=tree", "objective.labels=200", "objective.alpha=2",
                                                   "objective.beta=1", "objective.mi_estimator=fano", "objective.leaf_order=index",
                                                   "data.binarize=dynamic", "model.activation=relu", "model.init=pytorch",
                                                   "train.lr=0.01"],
                  output: "classifier.tree", miGradient: true)
    }

    /// α = β with MD̂ = KL − Î: the plain ELBO for the encoder and decoder; the classifier still learns its CE.
    func testAlphaEqualsBeta() throws {
        try check("alpha-eq-beta", steps: 10, vaeas + ["objective.labels=64", "objective.alpha=1", "objective.beta=1",
                                                       "objective.mi_estimator=entropy", "objective.md_estimator=kl_minus_mi",
                                                       "train.lr=0.01"],
                  output: "classifier.out", miGradient: false)
    }

    /// α = β = 1 with eq. 14 (the default): not the ELBO; β·(mean CE − mean H) reaches the encoder.
    func testEq14AtAlphaEqualsBeta() throws {
        try check("eq14-alpha-eq-beta", steps: 10, vaeas + ["objective.labels=64", "objective.alpha=1", "objective.beta=1",
                                                            "objective.mi_estimator=entropy", "objective.md_estimator=eq14",
                                                            "train.lr=0.01"],
                  output: "classifier.out", miGradient: true)
    }

    /// The composition MD̂ = KL − Î at α ≠ β: (α − β)·Î into the encoder.
    func testKLMinusMIFano() throws {
        try check("kl-minus-mi-fano", steps: 30, vaeas + ["objective.labels=200", "objective.alpha=0.5", "objective.beta=1.5",
                                                          "objective.mi_estimator=fano", "objective.md_estimator=kl_minus_mi",
                                                          "data.binarize=static", "train.lr=0.01"],
                  output: "classifier.out", miGradient: true)
    }

    /// The comparison can fail: one element of one dumped gradient moved by 1e-2·max|g|.
    func testAPerturbedGradientFails() throws {
        guard try requireTorch() else { return }
        let dir = try dump("perturbed", vaeas + ["objective.softmax=tree", "objective.labels=50", "objective.alpha=2",
                                                 "objective.beta=1", "objective.mi_estimator=ce"])
        let clean = try crossCheck(dir)
        XCTAssertEqual(clean.status, 0, clean.output)
        for tensor in ["grad.encoder.mu.weight", "grad.classifier.tree.bias"] {
            let r = try crossCheck(dir, ["--perturb", tensor])
            XCTAssertEqual(r.status, 1, "perturbing \(tensor) must fail the check: \(r.output)")
            XCTAssertEqual(r.json["ok"] as? Bool, false)
            XCTAssertEqual(r.json["worst"] as? String, tensor)
            let e = (r.json["grads"] as? [String: Double])?[tensor] ?? 0
            XCTAssertEqual(e, 1e-2, accuracy: 1e-3, "\(tensor): \(r.output)")
        }
    }
}
