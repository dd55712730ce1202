import Foundation
import XCTest
import SafeTensors

/// Damaged or contradictory checkpoints, directories where files are expected,
/// and request sizes through the command line: a message naming the file,
/// tensor or key, exit status 1 (or ArgumentParser's 64), never a crash (134)
/// or a huge allocation.
final class CheckpointInputTests: XCTestCase {
    /// A small VAE-AS checkpoint (hidden 16, latent 4, one encoder, decoder and
    /// classifier layer, 50 labels over 500 samples), trained once per softmax.
    private static var trained: [String: String] = [:]

    private func checkpoint(softmax: String = "full", file: StaticString = #filePath, line: UInt = #line) throws -> String {
        if let path = Self.trained[softmax] { return path }
        let out = CLI.temporaryDirectory("ckpt-input-\(softmax)")
        let r = try CLI.run(["train", "--out", out, "--overwrite", "--data-dir", CLI.sharedData,
                             "--set", "data.name=binarized-mnist", "--set", "data.limit=500",
                             "--set", "model.latent=4", "--set", "model.hidden=16",
                             "--set", "model.enc_layers=1", "--set", "model.dec_layers=1", "--set", "model.cls_layers=1",
                             "--set", "objective.kind=vaeas", "--set", "objective.labels=50",
                             "--set", "objective.softmax=\(softmax)",
                             "--set", "objective.mi_estimator=\(softmax == "tree" ? "fano" : "entropy")",
                             "--set", "train.batch=50", "--set", "train.epochs=1", "--set", "eval.every=0"])
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        Self.trained[softmax] = out + "/model.safetensors"
        return out + "/model.safetensors"
    }

    /// A copy of `source` with metadata entries replaced and tensors changed by `edit`.
    private func variant(of source: String, _ name: String, metadata: [String: String] = [:],
                         edit: (String, inout [Float]) -> Void = { _, _ in }) throws -> String {
        let f = try SafeTensorsFile.load(path: source)
        var w = SafeTensorsWriter()
        w.metadata = f.metadata.merging(metadata) { $1 }
        for n in f.names {
            var values = try f.floats(n)
            edit(n, &values)
            try w.add(n, shape: try f.shape(of: n), data: values)
        }
        let path = CLI.temporaryDirectory("ckpt-\(name)") + "/model.safetensors"
        try w.write(to: path)
        return path
    }

    /// Every command that reads a checkpoint, with small sizes.
    private func commands(_ ckpt: String, png: String) -> [[String]] {
        [["eval", "--checkpoint", ckpt, "--data-dir", CLI.sharedData, "--limit", "20", "--iw-samples", "2", "--json"],
         ["estimate", "--checkpoint", ckpt, "--data-dir", CLI.sharedData, "--limit", "50", "--samples", "20", "--json"],
         ["reconstruct", "--checkpoint", ckpt, "--data-dir", CLI.sharedData, "--dataset", "binarized-mnist",
          "--split", "test", "--count", "4", "--out", png],
         ["sample", "--checkpoint", ckpt, "--count", "4", "--out", png]]
    }

    private func assertRefused(_ r: CLI.Result, _ args: [String], mentions parts: [String],
                               file: StaticString = #filePath, line: UInt = #line) {
        let command = args.prefix(1).joined()
        XCTAssertEqual(r.status, 1, "\(command): expected exit status 1, got \(r.status); output: \(r.output)",
                       file: file, line: line)
        for p in parts {
            XCTAssertTrue(r.stderr.contains(p), "\(command): stderr lacks '\(p)': \(r.stderr)", file: file, line: line)
        }
    }

    /// `hidden`, `labels` or a layer count in `__metadata__` that the tensors contradict is refused
    /// with the key and the tensor named, before anything of the declared size is allocated.
    func testMetadataContradictingTheTensorsIsRefusedBeforeAllocating() throws {
        let ckpt = try checkpoint()
        let png = CLI.temporaryDirectory("ckpt-meta-png") + "/x.png"
        let cases: [(name: String, metadata: [String: String], mentions: [String])] = [
            ("hidden", ["hidden": "100000"],
             ["hidden=100000", "'encoder.layers.0.weight'", "[16, 784]", "[100000, 784]"]),
            ("labels", ["labels": "2000000000"],
             ["labels=2000000000", "'classifier.out.weight'", "[50, 16]", "[2000000000, 16]"]),
            ("layers", ["enc_layers": "3"], ["enc_layers=3", "encoder.layers"]),
            ("latent", ["latent_dim": "4000000"], ["latent_dim=4000000", "'encoder.mu.weight'", "[4, 16]"]),
        ]
        for c in cases {
            let bad = try variant(of: ckpt, c.name, metadata: c.metadata)
            for args in commands(bad, png: png) {
                try? FileManager.default.removeItem(atPath: png)
                let r = try CLI.run(args, timeout: 60)
                assertRefused(r, args, mentions: [bad, "__metadata__"] + c.mentions)
                XCTAssertFalse(FileManager.default.fileExists(atPath: png), "\(args[0]) wrote \(png)")
            }
        }
        // The tree softmax's output layer has labels − 1 rows.
        let tree = try variant(of: try checkpoint(softmax: "tree"), "tree-labels", metadata: ["labels": "60"])
        let args = commands(tree, png: png)[0]
        assertRefused(try CLI.run(args, timeout: 60), args,
                      mentions: [tree, "labels=60", "'classifier.tree.weight'", "[49, 16]", "[59, 16]"])
    }

    /// NaN or ±Inf in any tensor of a checkpoint is refused with the tensor named,
    /// rather than `eval` printing `"nll": null` with exit status 0.
    func testNonFiniteWeightsAreRefused() throws {
        let ckpt = try checkpoint()
        let png = CLI.temporaryDirectory("ckpt-nan-png") + "/x.png"
        let cases: [(tensor: String, value: Float, mentions: [String])] = [
            ("decoder.out.weight", .nan, ["'decoder.out.weight'", "NaN"]),
            ("encoder.mu.bias", .infinity, ["'encoder.mu.bias'", "inf"]),
            ("classifier.out.bias", -.infinity, ["'classifier.out.bias'", "-inf"]),
        ]
        for c in cases {
            let bad = try variant(of: ckpt, "nonfinite-\(c.tensor)") { name, values in
                if name == c.tensor { values[values.count / 2] = c.value }
            }
            for args in commands(bad, png: png) {
                assertRefused(try CLI.run(args, timeout: 60), args, mentions: [bad, "non-finite"] + c.mentions)
            }
        }
    }

    /// Finite weights so large that the log-likelihood overflows: `eval` fails
    /// naming the non-finite result instead of printing null with status 0.
    func testEvalWithNonFiniteResultFails() throws {
        let huge = try variant(of: try checkpoint(), "huge") { name, values in
            if name == "decoder.out.weight" || name == "decoder.out.bias" {
                for i in values.indices { values[i] = i % 2 == 0 ? 3e38 : -3e38 }
            }
        }
        let args = ["eval", "--checkpoint", huge, "--data-dir", CLI.sharedData, "--limit", "20", "--iw-samples", "2",
                    "--no-classifier", "--json"]
        let r = try CLI.run(args, timeout: 60)
        assertRefused(r, args, mentions: [huge, "not finite"])
        XCTAssertFalse(r.stdout.contains("null"), r.stdout)
    }

    /// A directory given for a checkpoint, a config file or a data file is named as a directory.
    func testDirectoryWhereAFileIsExpected() throws {
        let dir = CLI.temporaryDirectory("ckpt-dir") + "/model.safetensors"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let png = CLI.temporaryDirectory("ckpt-dir-png") + "/x.png"
        for args in commands(dir, png: png) {
            let r = try CLI.run(args, timeout: 60)
            assertRefused(r, args, mentions: ["\(dir): is a directory, expected a safetensors file"])
            XCTAssertFalse(r.stderr.contains("NSCocoaErrorDomain"), r.stderr)
            XCTAssertFalse(r.stderr.contains("not found"), r.stderr)
        }

        let config = CLI.temporaryDirectory("config-dir")
        let train = try CLI.run(smallArguments(out: CLI.temporaryDirectory("config-dir-out"), extra: ["--config", config]))
        assertRefused(train, ["train"], mentions: ["\(config): is a directory, expected a YAML config file"])
        XCTAssertFalse(train.stderr.contains("NSCocoaErrorDomain"), train.stderr)

        let data = CLI.temporaryDirectory("data-dir") + "/binarized-mnist"
        let images = data + "/train-images-idx3-ubyte"
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        var args = smallArguments(out: CLI.temporaryDirectory("data-dir-out"))
        args[args.firstIndex(of: "--data-dir")! + 1] = data
        let r = try CLI.run(args)
        assertRefused(r, args, mentions: ["\(images): is a directory, expected an IDX file"])
        XCTAssertFalse(r.stderr.contains("neither exists"), r.stderr)
    }

    /// `--config /dev/null` (or an empty file) means every default, like an empty YAML file.
    func testEmptyConfigMeansDefaults() throws {
        let out = CLI.temporaryDirectory("config-null")
        let r = try CLI.run(smallArguments(out: out, extra: ["--config", "/dev/null"]))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"), r.output)
    }

    /// `sample` (and `reconstruct`) refuse a --count whose grid would not fit, before allocating it.
    func testImageCountIsCapped() throws {
        let ckpt = try checkpoint()
        let png = CLI.temporaryDirectory("count-png") + "/x.png"
        for args in [["sample", "--checkpoint", ckpt, "--count", "10001", "--out", png],
                     ["sample", "--checkpoint", ckpt, "--count", "5000000", "--out", png],
                     ["reconstruct", "--checkpoint", ckpt, "--data-dir", CLI.sharedData, "--split", "train",
                      "--count", "10001", "--out", png]] {
            try? FileManager.default.removeItem(atPath: png)
            let r = try CLI.run(args, timeout: 60)
            XCTAssertNotEqual(r.status, 0, r.output)
            XCTAssertNotEqual(r.status, 134, r.output)
            XCTAssertTrue(r.stderr.contains("--count"), r.stderr)
            XCTAssertTrue(r.stderr.contains("at most 10000"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: png), "\(args[0]) wrote \(png)")
        }
    }
}
