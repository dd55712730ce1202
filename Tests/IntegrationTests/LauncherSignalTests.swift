import Foundation
import XCTest

/// Issue #21: SIGTERM, SIGINT or SIGHUP to `scripts/mpirun.sh` end the job with
/// status 75 and a checkpoint, also with `train.checkpoint_steps: 0` (before, the
/// signal reached mpirun, which exits 1: a requeue keyed on 75 did not happen).
final class LauncherSignalTests: XCTestCase {
    /// `scripts/mpirun.sh ARGS` started in the background with this build's binary, output discarded.
    func launch(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [CLI.repositoryRoot.appendingPathComponent("scripts/mpirun.sh").path] + args
        var env = ProcessInfo.processInfo.environment
        env["VAEAS_BIN"] = CLI.binary
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        env["OPENBLAS_NUM_THREADS"] = "1"
        p.environment = env
        let log = FileHandle(forWritingAtPath: "/dev/null")
        p.standardOutput = log
        p.standardError = log
        try p.run()
        return p
    }

    func testSignalsToTheLauncherScriptCheckpointAndExit75() throws {
        for (name, signal) in [("TERM", SIGTERM), ("INT", SIGINT), ("HUP", SIGHUP)] {
            let out = CLI.temporaryDirectory("launcher-\(name)")
            let p = try launch(["-n", "2", "train",
                                "--config", CLI.repositoryRoot.appendingPathComponent("configs/mnist-vae-quick.yaml").path,
                                "--data-dir", CLI.sharedData, "--out", out, "--set", "data.limit=5000", "--set", "train.epochs=400",
                                "--set", "eval.every=0", "--set", "train.checkpoint_every=0", "--set", "train.checkpoint_steps=0"])
            // Training is under way once rank 0 has written the run record and some steps went by.
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline && !FileManager.default.fileExists(atPath: out + "/run.jsonl") { usleep(100_000) }
            usleep(2_000_000)
            kill(p.processIdentifier, signal)
            let stop = Date().addingTimeInterval(60)
            while p.isRunning && Date() < stop { usleep(50_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); XCTFail("\(name): the job did not end") }
            XCTAssertEqual(p.terminationStatus, 75, "SIG\(name) to scripts/mpirun.sh")
            XCTAssertNotNil(TestCheckpoints.newestStep(out), "SIG\(name): a checkpoint was written")
        }
    }

    /// A signal during the epoch-end evaluation (issue #21, defect 4): the
    /// epoch's checkpoint is written before the evaluation (or, with
    /// checkpoint_every 0, at the signal), the evaluation stops within a chunk,
    /// and the job exits 75 at once (it took 32.7 s before: past SLURM's
    /// KillWait). The resumed run evaluates that epoch first; its
    /// metrics.jsonl equals an uninterrupted run's.
    func testSignalDuringEvaluationExitsAtOnceAndResumeEvaluatesFirst() throws {
        let common = ["--data-dir", CLI.sharedData, "--set", "data.name=binarized-mnist", "--set", "data.limit=600",
                      "--set", "model.latent=8", "--set", "model.hidden=32", "--set", "model.enc_layers=2",
                      "--set", "model.dec_layers=2", "--set", "train.batch=50", "--set", "train.epochs=2",
                      "--set", "eval.iw_samples=100", "--set", "train.checkpoint_steps=0"]
        let reference = CLI.temporaryDirectory("eval-signal-ref")
        let full = try CLI.run(["train", "--out", reference, "--overwrite"] + common, ranks: 2)
        XCTAssertEqual(full.status, 0, full.output)
        for every in ["1", "0"] {
            let out = CLI.temporaryDirectory("eval-signal-\(every)")
            let p = try launch(["-n", "2", "train", "--out", out, "--set", "train.checkpoint_every=\(every)"] + common)
            // The heartbeat names the phase: wait for the first epoch's evaluation.
            let heartbeat = out + "/.heartbeat/rank-0.json"
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if let text = try? String(contentsOfFile: heartbeat, encoding: .utf8), text.contains("evaluation after epoch 1") { break }
                usleep(50_000)
            }
            let signalled = Date()
            kill(p.processIdentifier, SIGTERM)
            while p.isRunning && Date() < signalled.addingTimeInterval(60) { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL); XCTFail("every \(every): the job did not end") }
            let took = Date().timeIntervalSince(signalled)
            XCTAssertEqual(p.terminationStatus, 75, "checkpoint_every \(every)")
            XCTAssertLessThan(took, 5, "checkpoint_every \(every): exit took \(took) s after the signal")
            XCTAssertTrue((try? CLI.jsonLines(out + "/metrics.jsonl"))?.isEmpty ?? true, "no epoch line before the evaluation is done")
            let manifest = try Data(contentsOf: URL(fileURLWithPath: out + "/checkpoints/step-000000012/manifest.json"))
            XCTAssertTrue(String(decoding: manifest, as: UTF8.self).contains("pendingEpochEnd"))
            let resumed = try CLI.run(["train", "--resume", out], ranks: 2)
            XCTAssertEqual(resumed.status, 0, resumed.output)
            XCTAssertEqual(try CLI.withoutTimes(out + "/metrics.jsonl"), try CLI.withoutTimes(reference + "/metrics.jsonl"),
                           "checkpoint_every \(every)")
            print("LauncherSignalTests: checkpoint_every \(every): exit 75 \(String(format: "%.2f", took)) s after SIGTERM during the evaluation")
        }
    }
}
