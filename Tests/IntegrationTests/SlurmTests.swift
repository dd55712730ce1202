import Foundation
import XCTest

/// cluster/slurm.sbatch end to end on a one-node SLURM started for the test
/// (cluster/slurm-local.sh; issue #21): a SIGUSR1 like the one `--signal=USR1@120`
/// sends before the time limit (checkpoint, exit 75, the script requeues the
/// job), then a preemption (`scontrol requeue`: SIGTERM), each resumed by the
/// requeued job from its checkpoint, and the whole equals an uninterrupted run;
/// and a stalled rank under `srun --kill-on-bad-exit` ends the job with 124.
/// Skipped where SLURM cannot run (not root, packages missing).
final class SlurmTests: XCTestCase {
    var slurmDir = ""
    var env: [String: String?] = [:]

    override func setUpWithError() throws {
        slurmDir = CLI.temporaryDirectory("slurm-" + name.filter { $0.isLetter })
        let r = try CLI.run([CLI.repositoryRoot.appendingPathComponent("cluster/slurm-local.sh").path, "start", slurmDir],
                            timeout: 60, executable: "/bin/bash")
        if r.status == 2 { throw XCTSkip("one-node SLURM not available here: \(r.stderr)") }
        XCTAssertEqual(r.status, 0, r.output)
        env = ["SLURM_CONF": slurmDir + "/slurm.conf"]
    }

    override func tearDownWithError() throws {
        _ = try? CLI.run([CLI.repositoryRoot.appendingPathComponent("cluster/slurm-local.sh").path, "stop", slurmDir],
                         timeout: 60, executable: "/bin/bash")
    }

    func slurm(_ command: String, _ args: [String]) throws -> CLI.Result {
        try CLI.run(args, timeout: 60, executable: "/usr/bin/" + command, environment: env)
    }

    func state(_ job: String) throws -> String {
        let r = try slurm("scontrol", ["show", "job", job])
        return r.stdout.components(separatedBy: "JobState=").dropFirst().first?.prefix { $0 != " " }.description ?? "?"
    }

    func wait(_ what: String, timeout: TimeInterval = 120, _ done: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try done() { return }
            usleep(200_000)
        }
        XCTFail("timed out waiting for \(what)")
        throw XCTSkip("gave up: \(what)")
    }

    func steps(_ run: String) -> Int {
        ((try? String(contentsOfFile: run + "/steps.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    func testRequeueAndPreemptionResumeEndToEnd() throws {
        let root = CLI.temporaryDirectory("slurm-job")
        let config = root + "/small.yaml"
        try """
            data: {name: binarized-mnist, dir: "\(CLI.sharedData)", limit: 2000}
            model: {latent: 8, hidden: 64, enc_layers: 2, dec_layers: 2}
            train: {batch: 50, epochs: 30, log_every: 1, checkpoint_every: 5}
            eval: {every: 5}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let reference = root + "/reference"
        let ref = try CLI.run(["train", "--config", config, "--out", reference], ranks: 2)
        XCTAssertEqual(ref.status, 0, ref.output)

        let run = root + "/run", log = root + "/job.out"
        let submit = try slurm("sbatch", ["--parsable", "--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1",
                                          "--time=00:10:00", "--output=" + log, "--chdir=" + CLI.repositoryRoot.path,
                                          "--export=ALL,VAEAS_BIN=\(CLI.binary),VAEAS_CONFIG=\(config),RUN_DIR=\(run),VAEAS_DATA_DIR=\(CLI.sharedData)",
                                          CLI.repositoryRoot.appendingPathComponent("cluster/slurm.sbatch").path])
        XCTAssertEqual(submit.status, 0, submit.output)
        let job = submit.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // 40 steps per epoch, 1200 in all: interrupt at ≥ 300 (SIGUSR1) and ≥ 700 (preemption).
        for (threshold, interrupt) in [(300, ["scancel", "--signal=USR1", job]), (700, ["scontrol", "requeue", job])] {
            try wait("step \(threshold)") { steps(run) >= threshold }
            let r = try slurm(interrupt[0], Array(interrupt.dropFirst()))
            XCTAssertEqual(r.status, 0, r.output)
            try wait("job \(job) requeued") { try state(job) == "PENDING" }
            // SLURM holds a requeued job for 120 s, time for the node to clean up the old steps; the test
            // starts it at once instead, so it waits for that cleanup itself: the node idle and no
            // slurmstepd of the job left (the requeued job keeps its id, so a new step J.0 launched while
            // the old J.0's slurmstepd is still exiting fails: "task launch failed", seen on a loaded machine).
            try wait("the node idle") { try slurm("sinfo", ["-h", "-o", "%t"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "idle" }
            try wait("the job's old slurmstepd processes gone") {
                try CLI.run(["-f", "slurmstepd: \\[\(job)\\."], timeout: 10, executable: "/usr/bin/pgrep").status == 1
            }
            sleep(2)
            XCTAssertEqual(try slurm("scontrol", ["update", "JobId=\(job)", "StartTime=now"]).status, 0)
        }
        try wait("job \(job) completed", timeout: 180) { try state(job) == "COMPLETED" }
        let text = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertEqual(text.components(separatedBy: "preempted at epoch").count - 1, 2, text)
        XCTAssertTrue(text.contains("requeueing job \(job)"), "the script requeued itself after exit 75: \(text)")
        XCTAssertEqual(text.components(separatedBy: "vaeas-dist train: resuming \(run) from step-").count - 1, 2, text)
        // The interrupted job equals the uninterrupted run (same rank count: bit for bit, up to timings).
        XCTAssertEqual(try CLI.withoutTimes(run + "/metrics.jsonl"), try CLI.withoutTimes(reference + "/metrics.jsonl"))
        XCTAssertEqual(try CLI.withoutTimes(run + "/steps.jsonl"), try CLI.withoutTimes(reference + "/steps.jsonl"))
        XCTAssertEqual(FileManager.default.contents(atPath: run + "/model.safetensors"),
                       FileManager.default.contents(atPath: reference + "/model.safetensors"))
    }

    /// A rank hung at step 5 under srun: the watchdog ends it with 124 and
    /// --kill-on-bad-exit ends the other; the report names the rank waited for.
    func testStalledRankUnderSrunEndsWith124() throws {
        let out = CLI.temporaryDirectory("slurm-stall")
        var stallEnv = env
        stallEnv["VAEAS_TEST_STALL"] = "5@1"
        let t0 = Date()
        let r = try CLI.run(["--mpi=pmix", "--kill-on-bad-exit=1", "-n", "2", CLI.binary]
                            + smallArguments(out: out, extra: ["--set", "train.stall_timeout=3", "--set", "train.epochs=3"]),
                            timeout: 120, executable: "/usr/bin/srun", environment: stallEnv)
        let took = Date().timeIntervalSince(t0)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("exit code 124"), r.stderr)
        XCTAssertTrue(r.stderr.contains("rank 1"), r.stderr)
        XCTAssertLessThan(took, 60, "the job ended \(took) s after start")
        print("SlurmTests: stalled rank under srun: status \(r.status) after \(String(format: "%.1f", took)) s")
    }
}
