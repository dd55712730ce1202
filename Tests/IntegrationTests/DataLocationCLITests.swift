import Foundation
import XCTest

/// Where the data comes from: $VAEAS_DATA_DIR does not hide the system's
/// Fashion-MNIST; eval, estimate and reconstruct use the data directory the
/// run recorded; a failed lookup lists every place tried. And --limit takes
/// examples spread over the split, not its first ones.
final class DataLocationCLITests: XCTestCase {
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"

    /// cluster/README.md advises exporting VAEAS_DATA_DIR (which holds
    /// binarized-mnist/); the default config trains Fashion-MNIST.
    func testVAEASDataDirDoesNotHideTheStandardFashionMNIST() throws {
        guard FileManager.default.fileExists(atPath: Self.fashionMNIST) else {
            return XCTFail("\(Self.fashionMNIST) is missing: scripts/setup.sh installs dataset-fashion-mnist")
        }
        let out = CLI.temporaryDirectory("fashion-env")
        let r = try CLI.run(["train", "--out", out, "--overwrite", "--set", "data.limit=300", "--set", "train.epochs=1",
                             "--set", "eval.every=0", "--set", "model.hidden=32", "--set", "model.latent=4"],
                            environment: ["VAEAS_DATA_DIR": CLI.sharedData])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("note: fashion-mnist is not in \(CLI.sharedData) ($VAEAS_DATA_DIR); using \(Self.fashionMNIST)"),
                      r.stderr)
        XCTAssertTrue(r.stdout.contains("fashion-mnist (300 samples)"), r.stdout)
    }

    /// A small model trained with --data-dir: its config.yaml records data.dir.
    func trainedModel(_ name: String) throws -> String {
        let out = CLI.temporaryDirectory(name)
        let r = try CLI.run(smallArguments(out: out, extra: ["--set", "data.binarize=static"]))
        XCTAssertEqual(r.status, 0, r.output)
        return out
    }

    func testEvalEstimateAndReconstructUseTheRunsDataDirectory() throws {
        let out = try trainedModel("recorded-dir")
        let ckpt = out + "/model.safetensors"
        let origin = "data.dir in \(out)/config.yaml"
        let emptyDir = CLI.temporaryDirectory("recorded-dir-env")
        // No --data-dir and no VAEAS_DATA_DIR; then a VAEAS_DATA_DIR without the data (the run's own comes first).
        for env: [String: String?] in [["VAEAS_DATA_DIR": nil], ["VAEAS_DATA_DIR": emptyDir]] {
            let e = try CLI.run(["eval", "--checkpoint", ckpt, "--limit", "100", "--iw-samples", "2", "--json"], environment: env)
            XCTAssertEqual(e.status, 0, e.output)
            let j = try CLI.lastJSON(e)
            XCTAssertEqual(j["data_dir"] as? String, CLI.sharedData, "\(j)")
            XCTAssertEqual(j["data_dir_origin"] as? String, origin, "\(j)")

            let m = try CLI.run(["estimate", "--checkpoint", ckpt, "--limit", "200", "--samples", "50"], environment: env)
            XCTAssertEqual(m.status, 0, m.output)
            XCTAssertTrue(m.stdout.contains("data: binarized-mnist from \(CLI.sharedData) (\(origin)); 200 examples, every 5th of the 1000 of train (50000) trained on"),
                          m.stdout)

            let png = out + "/recon.png"
            let c = try CLI.run(["reconstruct", "--checkpoint", ckpt, "--split", "test", "--count", "4", "--out", png],
                                environment: env)
            XCTAssertEqual(c.status, 0, c.output)
            XCTAssertTrue(c.stdout.contains("data from \(CLI.sharedData) (\(origin))"), c.stdout)
        }
        // --data-dir, when given, is the only place looked in.
        let explicit = try CLI.run(["eval", "--checkpoint", ckpt, "--data-dir", emptyDir, "--limit", "10", "--iw-samples", "1"])
        XCTAssertNotEqual(explicit.status, 0, explicit.output)
        XCTAssertTrue(explicit.stderr.contains(emptyDir + "/test-images-idx3-ubyte"), explicit.stderr)
    }

    func testNothingFoundListsEveryPlaceTried() throws {
        let out = try trainedModel("nowhere")
        // The checkpoint beside a config.yaml whose data.dir lacks the data, and a VAEAS_DATA_DIR that lacks it too.
        let moved = CLI.temporaryDirectory("nowhere-run")
        let recorded = CLI.temporaryDirectory("nowhere-recorded"), env = CLI.temporaryDirectory("nowhere-env")
        try FileManager.default.copyItem(atPath: out + "/model.safetensors", toPath: moved + "/model.safetensors")
        try "data:\n  dir: \"\(recorded)\"\n".write(toFile: moved + "/config.yaml", atomically: true, encoding: .utf8)
        for command in [["eval", "--iw-samples", "1"], ["reconstruct", "--split", "test", "--out", moved + "/r.png"]] {
            let r = try CLI.run([command[0], "--checkpoint", moved + "/model.safetensors"] + command.dropFirst(),
                                environment: ["VAEAS_DATA_DIR": env])
            XCTAssertNotEqual(r.status, 0, r.output)
            for part in ["binarized-mnist split test not found", "\(recorded) (data.dir in \(moved)/config.yaml: no binarized-mnist/",
                         "\(env) ($VAEAS_DATA_DIR: no binarized-mnist/"] {
                XCTAssertTrue(r.stderr.contains(part), "\(command[0]): stderr lacks '\(part)': \(r.stderr)")
            }
        }
    }

    /// A binarized-mnist test file of 100 images: the first 50 black, the rest
    /// white, so the first examples and a spread subset differ.
    func halfBlackHalfWhite(_ dir: String, order: [Int] = Array(0..<100)) throws {
        let folder = dir + "/binarized-mnist"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var bytes: [UInt8] = [0, 0, 8, 3]
        for v: UInt32 in [UInt32(order.count), 28, 28] {
            bytes += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
        }
        for i in order { bytes += [UInt8](repeating: i < 50 ? 0 : 255, count: 784) }
        XCTAssertTrue(FileManager.default.createFile(atPath: folder + "/test-images-idx3-ubyte", contents: Data(bytes)))
    }

    /// `eval --limit 2` of the 100 images is exactly the eval of images 0 and 50
    /// (every 50th), and `estimate --limit 2` likewise; the output says which.
    func testLimitTakesExamplesSpreadOverTheSplit() throws {
        let out = try trainedModel("spread")
        let ckpt = out + "/model.safetensors"
        let full = CLI.temporaryDirectory("spread-full"), pair = CLI.temporaryDirectory("spread-pair")
        try halfBlackHalfWhite(full)
        try halfBlackHalfWhite(pair, order: [0, 50])
        func json(_ args: [String]) throws -> [String: Any] {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 0, r.output)
            return try CLI.lastJSON(r)
        }
        let limited = try json(["eval", "--checkpoint", ckpt, "--data-dir", full, "--limit", "2", "--iw-samples", "3", "--json"])
        let exact = try json(["eval", "--checkpoint", ckpt, "--data-dir", pair, "--iw-samples", "3", "--json"])
        XCTAssertEqual(limited["subset"] as? String, "2 examples: every 50th of test (100)")
        XCTAssertEqual(exact["subset"] as? String, "all 2 examples of test")
        for key in ["nll", "elbo", "recon", "kl"] {
            XCTAssertEqual(limited[key] as? Double, exact[key] as? Double, "eval \(key): --limit 2 must be images 0 and 50")
        }
        let estLimited = try json(["estimate", "--checkpoint", ckpt, "--data-dir", full, "--split", "test", "--limit", "2",
                                   "--samples", "2", "--json"])
        let estExact = try json(["estimate", "--checkpoint", ckpt, "--data-dir", pair, "--split", "test", "--samples", "2", "--json"])
        for key in ["mi", "md", "mean_kl"] {
            XCTAssertEqual(estLimited[key] as? Double, estExact[key] as? Double, "estimate \(key): --limit 2 must be images 0 and 50")
        }
        // On the real, class-sorted binarized-MNIST test set.
        let real = try json(["eval", "--checkpoint", ckpt, "--data-dir", CLI.sharedData, "--limit", "500", "--iw-samples", "1", "--json"])
        XCTAssertEqual(real["subset"] as? String, "500 examples: every 20th of test (10000)")
        XCTAssertEqual(real["examples"] as? Int, 500)
    }
}
