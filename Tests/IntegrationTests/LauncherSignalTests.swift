import Foundation
import XCTest

/// Issue #21: SIGTERM, SIGINT or SIGHUP to `scripts/mpirun.sh` end the job with
/// status 75 and a checkpoint, also with `train.checkpoint_steps: 0` (before, the
/// signal reached mpirun, which exits 1: a requeue keyed on 75 did not happen).
final class LauncherSignalTests: XCTestCase {
    func testSignalsToTheLauncherScriptCheckpointAndExit75() throws {
        for (name, signal) in [("TERM", SIGTERM), ("INT", SIGINT), ("HUP", SIGHUP)] {
            let out = CLI.temporaryDirectory("launcher-\(name)")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = [CLI.repositoryRoot.appendingPathComponent("scripts/mpirun.sh").path, "-n", "2", "train",
                           "--config", CLI.repositoryRoot.appendingPathComponent("configs/mnist-vae-quick.yaml").path,
                           "--data-dir", CLI.sharedData, "--out", out, "--set", "data.limit=5000", "--set", "train.epochs=400",
                           "--set", "eval.every=0", "--set", "train.checkpoint_every=0", "--set", "train.checkpoint_steps=0"]
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
}
