import Foundation
import XCTest

/// Every distributed path against the single-rank run, with mpirun at 1, 2 and 3 ranks.
final class DistributedTests: XCTestCase {
    func stepLosses(ranks: Int, steps: Int, tag: String) throws -> (steps: [[String: Any]], metrics: [[String: Any]], dir: String) {
        let out = CLI.temporaryDirectory("\(tag)-\(ranks)")
        // Batch 50 over 3 ranks: slices of 16, 17 and 17 samples.
        let r = try CLI.run(smallArguments(out: out, extra: ["--set", "train.max_steps=\(steps)", "--set", "train.log_every=1",
                                                             "--set", "train.epochs=2"]), ranks: ranks)
        XCTAssertEqual(r.status, 0, r.output)
        return (try CLI.jsonLines(out + "/steps.jsonl"), try CLI.jsonLines(out + "/metrics.jsonl"), out)
    }

    func testOneTwoThreeRanksAgreeAfterOneAndTwentySteps() throws {
        let runs = try [1, 2, 3].map { try stepLosses(ranks: $0, steps: 20, tag: "agree") }
        let ref = runs[0]
        XCTAssertEqual(ref.steps.count, 20)
        for (k, run) in runs.enumerated() {
            let ranks = k + 1
            XCTAssertEqual(run.steps.count, 20, "ranks \(ranks)")
            let l1 = run.steps[0]["loss"] as! Double, r1 = ref.steps[0]["loss"] as! Double
            let l20 = run.steps[19]["loss"] as! Double, r20 = ref.steps[19]["loss"] as! Double
            XCTAssertLessThan(abs(l1 - r1) / r1, 1e-5, "step 1 at \(ranks) ranks: \(l1) vs \(r1)")
            XCTAssertLessThan(abs(l20 - r20) / r20, 1e-3, "step 20 at \(ranks) ranks: \(l20) vs \(r20)")
            let m = run.metrics.last!
            XCTAssertEqual(m["ranks"] as? Int, ranks)
            XCTAssertEqual(m["replicas_identical"] as? Bool, true, "parameter checksums differ across ranks")
            let ps = m["param_sum"] as! Double, rps = ref.metrics.last!["param_sum"] as! Double
            XCTAssertLessThan(abs(ps - rps), 1e-3 * max(1, abs(rps)), "parameter sum at \(ranks) ranks")
        }
        XCTAssertLessThan(ref.steps[19]["loss"] as! Double, ref.steps[0]["loss"] as! Double, "the loss falls over 20 steps")
    }

    func testSameRankCountIsBitForBit() throws {
        let a = try stepLosses(ranks: 2, steps: 8, tag: "bitA")
        let b = try stepLosses(ranks: 2, steps: 8, tag: "bitB")
        XCTAssertEqual(try CLI.withoutTimes(a.dir + "/steps.jsonl"), try CLI.withoutTimes(b.dir + "/steps.jsonl"))
        XCTAssertEqual(FileManager.default.contents(atPath: a.dir + "/model.safetensors"),
                       FileManager.default.contents(atPath: b.dir + "/model.safetensors"))
    }

    /// Two ranks, two epochs with evaluation: the loss falls, the outputs are
    /// complete, and the checkpoint loads with the `safetensors` Python package.
    func testTwoRankRunWritesOutputsAndLoadableCheckpoint() throws {
        let out = CLI.temporaryDirectory("e2e")
        let r = try CLI.run(smallArguments(out: out, extra: ["--set", "train.epochs=2", "--set", "eval.every=1",
                                                             "--set", "data.limit=2000", "--set", "eval.iw_samples=5"]), ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("epoch 2/2"), r.stdout)
        let metrics = try CLI.jsonLines(out + "/metrics.jsonl")
        XCTAssertEqual(metrics.count, 2)
        for key in ["epoch", "ranks", "loss", "recon", "kl", "test_elbo", "test_au", "test_nll", "samples_per_s", "seconds"] {
            XCTAssertNotNil(metrics[0][key], "metrics.jsonl lacks \(key)")
        }
        XCTAssertLessThan(metrics[1]["loss"] as! Double, metrics[0]["loss"] as! Double)
        XCTAssertGreaterThan(metrics[1]["test_elbo"] as! Double, metrics[0]["test_elbo"] as! Double)
        let config = try String(contentsOfFile: out + "/config.yaml", encoding: .utf8)
        XCTAssertTrue(config.contains("limit: 2000"), config)

        let script = """
        import json, sys
        from safetensors import safe_open
        from safetensors.numpy import load_file
        t = load_file(sys.argv[1])
        with safe_open(sys.argv[1], framework="np") as f:
            md = f.metadata()
        print(json.dumps({"shapes": {k: list(v.shape) for k, v in t.items()},
                          "dtypes": sorted({str(v.dtype) for v in t.values()}), "metadata": md}))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, out + "/model.safetensors"]
        let pipe = Pipe(), err = Pipe()
        p.standardOutput = pipe
        p.standardError = err
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "python3 could not load the checkpoint (run scripts/setup.sh): \(errText)")
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let shapes = json["shapes"] as! [String: [Int]]
        XCTAssertEqual(shapes["encoder.layers.0.weight"], [64, 784])
        XCTAssertEqual(shapes["encoder.layers.1.weight"], [64, 64])
        XCTAssertEqual(shapes["encoder.mu.weight"], [8, 64])
        XCTAssertEqual(shapes["encoder.logvar.bias"], [8])
        XCTAssertEqual(shapes["decoder.layers.0.weight"], [64, 8])
        XCTAssertEqual(shapes["decoder.out.weight"], [784, 64])
        XCTAssertEqual(shapes["decoder.out.bias"], [784])
        XCTAssertEqual(shapes.count, 14)
        XCTAssertEqual(json["dtypes"] as? [String], ["float32"])
        let md = json["metadata"] as! [String: String]
        XCTAssertEqual(md["activation"], "tanh")
        XCTAssertEqual(md["latent_dim"], "8")
        XCTAssertEqual(md["hidden"], "64")
        XCTAssertEqual(md["enc_layers"], "2")
        XCTAssertEqual(md["dec_layers"], "2")
    }

    func testBenchReportsRatioToSgemm() throws {
        let r = try CLI.run(["bench", "--json", "--steps", "3", "--warmup", "1", "--data-dir", CLI.sharedData,
                             "--set", "data.name=binarized-mnist", "--set", "data.limit=500",
                             "--set", "model.hidden=64", "--set", "model.latent=8", "--set", "model.enc_layers=2",
                             "--set", "model.dec_layers=2", "--set", "train.batch=50"], ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        let line = r.stdout.split(separator: "\n").last { $0.hasPrefix("{") }!
        let j = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        XCTAssertEqual(j["ranks"] as? Int, 2)
        for key in ["samples_per_s", "flops_per_sample", "achieved_gflops_per_rank", "sgemm_gflops_per_rank", "ratio_to_sgemm"] {
            XCTAssertGreaterThan(j[key] as? Double ?? 0, 0, key)
        }
        // enc 784-64-64 → 8+8, dec 8-64-64-784: matmul FLOPs of forward + backward per sample.
        let layers: [(Int, Int, Bool)] = [(784, 64, false), (64, 64, true), (64, 8, true), (64, 8, true),
                                          (8, 64, true), (64, 64, true), (64, 784, true)]
        let expected = layers.reduce(0.0) { $0 + 2 * Double($1.0 * $1.1) * ($1.2 ? 3 : 2) }
        XCTAssertEqual(j["flops_per_sample"] as! Double, expected, accuracy: 1e-6 * expected)
    }

    /// A plain `vaeas-dist …` (no launcher) is one rank on LocalCommunicator and does
    /// not initialise MPI: it runs even where MPI_Init would fail (here an unknown PML
    /// component), and `VAEAS_MPI=1` brings MPI back, failing on the same set-up.
    func testPlainRunDoesNotInitialiseMPI() throws {
        let out = CLI.temporaryDirectory("no-mpi")
        let broken: [String: String?] = ["OMPI_MCA_pml": "doesnotexist",
                                         "OMPI_COMM_WORLD_SIZE": nil, "PMIX_RANK": nil, "PMI_RANK": nil, "PMI_SIZE": nil,
                                         "SLURM_PROCID": nil, "VAEAS_MPI": nil]
        let r = try CLI.run(smallArguments(out: out, extra: ["--set", "train.max_steps=2"]), environment: broken)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"), r.output)
        var forced = broken
        forced["VAEAS_MPI"] = "1"
        let m = try CLI.run(smallArguments(out: out + "-mpi", extra: ["--set", "train.max_steps=2"]), environment: forced)
        XCTAssertNotEqual(m.status, 0, "VAEAS_MPI=1 with a broken PML ran: \(m.output)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "-mpi/model.safetensors"))
    }
}
