import Foundation
import XCTest

/// Issue #21, defect 5: a diverging run stops without checkpointing the
/// diverged state (`train.divergence_factor`), and `--resume DIR --from-step N`
/// continues from any kept checkpoint.
final class DivergenceTests: XCTestCase {
    func arguments(out: String, _ extra: [String] = []) -> [String] { resumableRunArguments(out: out, extra) }

    func checkpoints(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints")) ?? []).sorted()
    }

    /// lr 10⁹ with a checkpoint after every step: step 1's update explodes the
    /// weights; the check before the checkpoint finds its batch's loss
    /// exploded, and nothing is written. Before, checkpoints/step-000000001
    /// held the exploded weights (and a resume from it could only diverge).
    func testAnExplodingUpdateIsNotCheckpointed() throws {
        let out = CLI.temporaryDirectory("diverge-step1")
        let r = try CLI.run(arguments(out: out, ["--set", "train.lr=1e9", "--set", "train.checkpoint_steps=1"]))
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.stderr.contains("diverged at step 1") && r.stderr.contains("the state after it was not checkpointed"),
                      r.stderr)
        XCTAssertEqual(checkpoints(out), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        // A factor ≤ 1 would stop every run: refused.
        let bad = try CLI.run(arguments(out: CLI.temporaryDirectory("diverge-factor"), ["--set", "train.divergence_factor=0.5"]))
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("train.divergence_factor"), bad.stderr)
    }

    /// A run resumed with a rate that explodes stops at the step whose loss is
    /// over the bound, naming the newest checkpoint; `--from-step 10` then
    /// continues from an older kept one with a lower rate: the newer
    /// checkpoints are moved aside, the logs cut back to step 10, and the run
    /// finishes with every step and epoch logged once. A step that was not
    /// kept is refused with the list of kept ones.
    func testFromStepContinuesFromAnOlderCheckpoint() throws {
        let out = CLI.temporaryDirectory("diverge-from-step")
        let r0 = try CLI.run(arguments(out: out, ["--set", "train.checkpoint_steps=5", "--set", "train.keep_checkpoints=0",
                                                  "--set", "train.max_steps=15"]))
        XCTAssertEqual(r0.status, 0, r0.output)
        XCTAssertEqual(checkpoints(out), ["step-000000005", "step-000000010", "step-000000012", "step-000000015"])
        let diverged = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=0", "--allow-config-change", "train.lr",
                                    "--set", "train.lr=1e9"])
        XCTAssertEqual(diverged.status, 1)
        XCTAssertTrue(diverged.stderr.contains("diverged at step 17")
                      && diverged.stderr.contains("the newest checkpoint is \(out)/checkpoints/step-000000015"), diverged.stderr)
        XCTAssertEqual(checkpoints(out).count, 4, "nothing written after the divergence")
        let missing = try CLI.run(["train", "--resume", out, "--from-step", "7"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("step-000000007: no such checkpoint; kept steps: 5, 10, 12, 15"), missing.stderr)
        let r = try CLI.run(["train", "--resume", out, "--from-step", "10", "--allow-config-change", "train.lr",
                             "--set", "train.lr=0.0005", "--set", "train.max_steps=0"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("resuming \(out) from step-000000010"), r.stdout)
        XCTAssertTrue(r.stdout.contains("moved the newer checkpoints step-000000012, step-000000015 to \(out)/checkpoints/abandoned-"),
                      r.stdout)
        let aside = try XCTUnwrap(checkpoints(out).first { $0.hasPrefix("abandoned-") })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints/" + aside).sorted(),
                       ["step-000000012", "step-000000015"])
        XCTAssertEqual(try CLI.jsonLines(out + "/steps.jsonl").map { $0["step"] as! Int }, Array(1...36))
        XCTAssertEqual(try CLI.jsonLines(out + "/metrics.jsonl").map { $0["epoch"] as! Int }, [1, 2, 3])
        // A later plain --resume picks the new trajectory's newest, not an abandoned one.
        XCTAssertTrue(checkpoints(out).contains("step-000000036"))
    }
}
