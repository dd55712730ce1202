import Foundation
import XCTest
import SafeTensors
import _TestSupport

/// Long runs that survive: training-state checkpoints, `--resume` (bit-exact
/// at the same rank count, resharded at another), stop signals, a killed rank,
/// kills during checkpoint writes, corrupt checkpoints, a full disk.
final class ResumeTests: XCTestCase {
    func arguments(out: String, _ extra: [String] = []) -> [String] { resumableRunArguments(out: out, extra) }

    static let vaeas = ["--set", "objective.kind=vaeas", "--set", "objective.labels=300", "--set", "model.cls_layers=1",
                        "--set", "objective.alpha=0.5", "--set", "train.samples=2"]
    static let tree = vaeas + ["--set", "objective.softmax=tree", "--set", "objective.mi_estimator=fano"]

    /// metrics.jsonl without its wall-clock fields, line by line.
    func metrics(_ dir: String) throws -> [String] {
        try CLI.withoutTimes(dir + "/metrics.jsonl").split(separator: "\n").map(String.init)
    }

    func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    /// Stopped mid-epoch (train.max_steps = 17 of 12 per epoch) and resumed at
    /// the same rank count: the same model.safetensors bytes, steps.jsonl and
    /// metrics as the uninterrupted run, for the VAE, the full softmax and the tree.
    func testResumeAtTheSameRankCountIsBitExact() throws {
        for (name, extra, ranks) in [("vae", [String](), 1), ("full", Self.vaeas, 2), ("tree", Self.tree, 2)] {
            let full = CLI.temporaryDirectory("resume-full-\(name)"), part = CLI.temporaryDirectory("resume-part-\(name)")
            XCTAssertEqual(try CLI.run(arguments(out: full, extra), ranks: ranks).status, 0)
            let stopped = try CLI.run(arguments(out: part, extra + ["--set", "train.max_steps=17"]), ranks: ranks)
            XCTAssertEqual(stopped.status, 0, stopped.output)
            let resumed = try CLI.run(["train", "--resume", part, "--set", "train.max_steps=0"], ranks: ranks)
            XCTAssertEqual(resumed.status, 0, resumed.output)
            XCTAssertTrue(resumed.stdout.contains("resuming \(part) from step-000000017"), resumed.stdout)
            XCTAssertNotNil(bytes(full + "/model.safetensors"))
            XCTAssertEqual(bytes(part + "/model.safetensors"), bytes(full + "/model.safetensors"), "\(name): model bytes")
            XCTAssertEqual(try CLI.withoutTimes(part + "/steps.jsonl"), try CLI.withoutTimes(full + "/steps.jsonl"), "\(name): steps.jsonl")
            XCTAssertEqual(try metrics(part), try metrics(full), "\(name): metrics.jsonl")
        }
    }

    /// A checkpoint written before `objective.md_estimator` existed (issue #20; its manifest's config has no such
    /// key) resumes with `kl_minus_mi`, the objective it was trained with, not today's default eq. 14, says so,
    /// and ends bit-identical to an uninterrupted kl_minus_mi run.
    func testACheckpointFromBeforeEq14KeepsItsObjective() throws {
        let extra = Self.tree + ["--set", "objective.md_estimator=kl_minus_mi"]
        let full = CLI.temporaryDirectory("resume-md-full"), part = CLI.temporaryDirectory("resume-md-part")
        XCTAssertEqual(try CLI.run(arguments(out: full, extra), ranks: 2).status, 0)
        XCTAssertEqual(try CLI.run(arguments(out: part, extra + ["--set", "train.max_steps=17"]), ranks: 2).status, 0)
        let manifest = part + "/checkpoints/step-000000017/manifest.json"
        var m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifest))) as? [String: Any])
        let config = try XCTUnwrap(m["config"] as? String)
        XCTAssertTrue(config.contains("md_estimator: \"kl_minus_mi\""), config)
        m["config"] = config.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("md_estimator:") }
            .joined(separator: "\n")
        // Such a checkpoint also predates run identities and the manifest's checksum.
        m["identity"] = nil
        try JSONSerialization.data(withJSONObject: m).write(to: URL(fileURLWithPath: manifest))
        try FileManager.default.removeItem(atPath: part + "/checkpoints/step-000000017/manifest.crc32")
        let r = try CLI.run(["train", "--resume", part, "--set", "train.max_steps=0"], ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("predates objective.md_estimator; continuing with kl_minus_mi"), r.stdout)
        XCTAssertEqual(bytes(part + "/model.safetensors"), bytes(full + "/model.safetensors"), "model bytes")
        XCTAssertTrue(try String(contentsOfFile: part + "/config.yaml", encoding: .utf8).contains("md_estimator: \"kl_minus_mi\""))
    }

    /// Stopped at 2 ranks and resumed at 3, and at 3 resumed at 1: the output
    /// layer is re-sliced and the run continues within float rounding.
    func testResumeAtAnotherRankCountReshardsTheOutputLayer() throws {
        for (name, extra, tensor) in [("full", Self.vaeas, "classifier.out.weight"), ("tree", Self.tree, "classifier.tree.weight")] {
            for (before, after) in [(2, 3), (3, 1)] {
                let full = CLI.temporaryDirectory("reshard-full-\(name)-\(before)")
                let part = CLI.temporaryDirectory("reshard-part-\(name)-\(before)-\(after)")
                XCTAssertEqual(try CLI.run(arguments(out: full, extra), ranks: before).status, 0)
                XCTAssertEqual(try CLI.run(arguments(out: part, extra + ["--set", "train.max_steps=17"]), ranks: before).status, 0)
                let r = try CLI.run(["train", "--resume", part, "--set", "train.max_steps=0"], ranks: after)
                XCTAssertEqual(r.status, 0, r.output)
                XCTAssertTrue(r.stdout.contains("saved at \(before) rank(s), now \(after)"), r.stdout)
                let a = try CLI.jsonLines(full + "/metrics.jsonl"), b = try CLI.jsonLines(part + "/metrics.jsonl")
                XCTAssertEqual(a.count, 3)
                XCTAssertEqual(b.map { $0["epoch"] as! Int }, [1, 2, 3], "no line lost or duplicated")
                XCTAssertEqual(b.map { $0["ranks"] as! Int }, [before, after, after])
                for (x, y) in zip(a, b) {
                    for key in ["loss", "kl", "mi", "sc", "test_elbo"] {
                        let u = x[key] as! Double, v = y[key] as! Double
                        XCTAssertLessThan(abs(u - v), 1e-5 * max(1, abs(u)), "\(name) \(before)→\(after) epoch \(x["epoch"]!) \(key)")
                    }
                }
                let w = try SafeTensorsFile.load(path: part + "/model.safetensors").floats(tensor)
                let ref = try SafeTensorsFile.load(path: full + "/model.safetensors").floats(tensor)
                XCTAssertLessThan(zip(w, ref).map { abs($0 - $1) }.max()!, 1e-4, "\(name) \(before)→\(after): \(tensor)")
            }
        }
    }

    /// Stopped by train.max_steps exactly at an epoch boundary (12 and 24 of
    /// 12 per epoch, with and without an epoch checkpoint) and resumed: every
    /// epoch's metrics line appears once (issue #21 reported one twice).
    func testResumeAtAnEpochBoundaryLogsEachEpochOnce() throws {
        for (steps, every) in [(12, 1), (24, 0)] {
            let out = CLI.temporaryDirectory("resume-boundary-\(steps)")
            let r = try CLI.run(arguments(out: out, ["--set", "train.max_steps=\(steps)", "--set", "train.checkpoint_every=\(every)"]))
            XCTAssertEqual(r.status, 0, r.output)
            let resumed = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=0"])
            XCTAssertEqual(resumed.status, 0, resumed.output)
            XCTAssertEqual(try CLI.jsonLines(out + "/metrics.jsonl").map { $0["epoch"] as! Int }, [1, 2, 3], "max_steps \(steps)")
        }
    }

    /// --set on --resume may not change the trajectory.
    func testResumeRefusesKeysThatChangeTheTrajectory() throws {
        let out = CLI.temporaryDirectory("resume-keys")
        XCTAssertEqual(try CLI.run(arguments(out: out, ["--set", "train.epochs=1"])).status, 0)
        for key in ["model.latent=4", "train.seed=3", "objective.alpha=2", "train.batch=20"] {
            let r = try CLI.run(["train", "--resume", out, "--set", key])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains(String(key.prefix { $0 != "=" })) && r.stderr.contains("cannot change on --resume"), r.stderr)
        }
        let finished = try CLI.run(["train", "--resume", out])
        XCTAssertNotEqual(finished.status, 0)
        XCTAssertTrue(finished.stderr.contains("train.epochs"), "a finished run says how to continue it: \(finished.stderr)")
        let more = try CLI.run(["train", "--resume", out, "--set", "train.epochs=2", "--set", "eval.every=0"])
        XCTAssertEqual(more.status, 0, more.output)
        XCTAssertEqual(try CLI.jsonLines(out + "/metrics.jsonl").map { $0["epoch"] as! Int }, [1, 2])
    }

    /// The newest checkpoint torn (no manifest) or corrupt (a shard's bytes
    /// changed): --resume names it, says why, and uses the previous one.
    func testTornOrCorruptCheckpointsFallBackToThePreviousOne() throws {
        let out = CLI.temporaryDirectory("resume-corrupt")
        let r = try CLI.run(arguments(out: out, Self.vaeas + ["--set", "train.checkpoint_steps=5", "--set", "train.keep_checkpoints=0",
                                                               "--set", "train.max_steps=20"]), ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        let root = out + "/checkpoints"
        let names = try FileManager.default.contentsOfDirectory(atPath: root).sorted()
        XCTAssertEqual(names, ["step-000000005", "step-000000010", "step-000000012", "step-000000015", "step-000000020"])
        try FileManager.default.removeItem(atPath: root + "/step-000000020/manifest.json")
        let shard = root + "/step-000000015/shard-1-of-2.safetensors"
        var data = try XCTUnwrap(bytes(shard))
        data[data.count - 3] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: shard))
        let resumed = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=0", "--set", "train.epochs=2"], ranks: 2)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("step-000000020: incomplete: no manifest.json"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("shard-1-of-2.safetensors: CRC-32"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("resuming \(out) from step-000000012"), resumed.stdout)
        // Nothing intact: an error naming the directory.
        for name in try FileManager.default.contentsOfDirectory(atPath: root) {
            try? FileManager.default.removeItem(atPath: root + "/" + name + "/replicated.safetensors")
        }
        let none = try CLI.run(["train", "--resume", out, "--set", "train.epochs=3"], ranks: 2)
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains(out) && none.stderr.contains("checkpoint(s) is intact ("), none.output)
        XCTAssertTrue(none.stderr.contains("replicated.safetensors"), "the reasons are given: \(none.output)")
    }

    /// A relative --data-dir is recorded absolute (issue #21), so that the run
    /// resumes from another working directory. Before, config.yaml kept it relative.
    func testRelativeDataDirIsRecordedAbsoluteAndResumesFromElsewhere() throws {
        let out = CLI.temporaryDirectory("resume-reldata")
        let cwd = FileManager.default.currentDirectoryPath
        let absolute = URL(fileURLWithPath: CLI.sharedData).standardizedFileURL.path
        let relative = String(repeating: "../", count: cwd.split(separator: "/").count) + String(absolute.drop { $0 == "/" })
        var args = arguments(out: out, ["--set", "train.epochs=1", "--set", "eval.every=0"])
        args[try XCTUnwrap(args.firstIndex(of: CLI.sharedData))] = relative
        let r = try CLI.run(args)
        XCTAssertEqual(r.status, 0, r.output)
        let yaml = try String(contentsOfFile: out + "/config.yaml", encoding: .utf8)
        XCTAssertTrue(yaml.contains(absolute) && !yaml.contains(relative), yaml)
        // From a directory deep enough that the relative path would point elsewhere.
        let elsewhere = CLI.temporaryDirectory("resume-reldata-cwd") + String(repeating: "/d", count: cwd.split(separator: "/").count + 1)
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        let resumed = try CLI.run(["train", "--resume", out, "--set", "train.epochs=2"], prefix: ["-C", elsewhere])
        XCTAssertEqual(resumed.status, 0, resumed.output)
    }

    /// Stopped before its first checkpoint (issue #21: a requeued SLURM job preempted
    /// early): `--resume` starts the run over from step 0 in its directory and says so,
    /// and the result equals a run that was never stopped. Before, neither --resume
    /// (no checkpoint) nor a fresh start (directory not empty) worked.
    func testResumeBeforeTheFirstCheckpointStartsFromStepZero() throws {
        let out = CLI.temporaryDirectory("resume-none-yet")
        // A hang at step 5 ended by the stall watchdog stands for a kill before any checkpoint.
        let r0 = try CLI.run(arguments(out: out, ["--set", "train.epochs=2", "--set", "train.checkpoint_every=0",
                                                  "--set", "train.stall_timeout=1"]),
                             environment: ["VAEAS_TEST_STALL": "5"])
        XCTAssertNotEqual(r0.status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/checkpoints/step-000000005"))
        let resumed = try CLI.run(["train", "--resume", out])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("has no checkpoint yet") && resumed.stdout.contains("starting it from step 0"), resumed.output)
        let reference = CLI.temporaryDirectory("resume-none-yet-ref")
        let ref = try CLI.run(arguments(out: reference, ["--set", "train.epochs=2", "--set", "train.checkpoint_every=0"]))
        XCTAssertEqual(ref.status, 0, ref.output)
        XCTAssertEqual(bytes(out + "/model.safetensors"), bytes(reference + "/model.safetensors"))
        XCTAssertEqual(try CLI.jsonLines(out + "/metrics.jsonl").count, 2)
    }

    /// A stop signal to one rank (SIGTERM), or SIGUSR1 to mpirun (which
    /// forwards it): the ranks agree at the next step boundary, write a
    /// checkpoint, say how to resume and exit with 75; the resumed run ends
    /// with the same bytes as an uninterrupted one.
    func testStopSignalCheckpointsAndResumeMatchesTheUninterruptedRun() throws {
        for (signal, target) in [(SIGTERM, "rank"), (SIGUSR1, "mpirun")] {
            let out = CLI.temporaryDirectory("signal-\(target)")
            let long = arguments(out: out, ["--set", "data.limit=5000", "--set", "train.epochs=400", "--set", "eval.every=0",
                                            "--set", "train.log_every=0"])
            let job = try BackgroundJob(long, ranks: 2)
            XCTAssertTrue(job.waitForFile(out + "/metrics.jsonl", nonEmpty: true, timeout: 60), "the run did not start")
            let pids = target == "rank" ? job.rankPIDs(matching: out).suffix(1) : [job.process.processIdentifier]
            XCTAssertFalse(pids.isEmpty)
            let t0 = Date()
            for p in pids { kill(p, signal) }
            let r = job.wait(timeout: 60)
            let seconds = Date().timeIntervalSince(t0)
            XCTAssertEqual(r.status, 75, "exit status after a stop signal: \(r.output)")
            XCTAssertLessThan(seconds, 30, "a stop takes one step and a checkpoint write")
            XCTAssertTrue(r.stdout.contains("preempted at epoch") && r.stdout.contains("--resume \(out)"), r.stdout)
            let stopEpoch = try CLI.jsonLines(out + "/metrics.jsonl").count + 1
            let resumed = try CLI.run(["train", "--resume", out, "--set", "train.epochs=\(stopEpoch)"], ranks: 2)
            XCTAssertEqual(resumed.status, 0, resumed.output)
            let reference = CLI.temporaryDirectory("signal-ref-\(target)")
            var ref = long
            ref[ref.firstIndex(of: out)!] = reference
            ref += ["--set", "train.epochs=\(stopEpoch)"]
            XCTAssertEqual(try CLI.run(ref, ranks: 2).status, 0)
            XCTAssertEqual(bytes(out + "/model.safetensors"), bytes(reference + "/model.safetensors"),
                           "\(target): resumed after the signal = uninterrupted")
            XCTAssertEqual(try metrics(out).count, stopEpoch)
        }
    }

    /// One rank killed with SIGKILL: the job ends within seconds (mpirun sees
    /// the death and ends the others), and --resume finishes the run.
    func testKilledRankEndsTheJobAndResumeFinishes() throws {
        let out = CLI.temporaryDirectory("sigkill")
        let job = try BackgroundJob(arguments(out: out, ["--set", "data.limit=5000", "--set", "train.epochs=400",
                                                         "--set", "eval.every=0", "--set", "train.log_every=0"]), ranks: 2)
        XCTAssertTrue(job.waitForFile(out + "/metrics.jsonl", nonEmpty: true, timeout: 60))
        let victim = try XCTUnwrap(job.rankPIDs(matching: out).last)
        let t0 = Date()
        kill(victim, SIGKILL)
        let r = job.wait(timeout: 60)
        let seconds = Date().timeIntervalSince(t0)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(seconds, 20, "the job must end, not hang: \(r.output)")
        XCTAssertTrue(r.output.contains("signal 9"), r.output)
        print("ResumeTests: job ended \(String(format: "%.2f", seconds)) s after SIGKILL of rank pid \(victim)")
        let done = try CLI.jsonLines(out + "/metrics.jsonl").count
        let resumed = try CLI.run(["train", "--resume", out, "--set", "train.epochs=\(done + 1)"], ranks: 2)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertEqual(try CLI.jsonLines(out + "/metrics.jsonl").map { $0["epoch"] as! Int }, Array(1...(done + 1)))
    }

    /// kill -9 of the whole job at random moments, with a checkpoint every
    /// step (so many kills land inside checkpoint writes): the checkpoint
    /// --resume picks always loads and resumes.
    func testKillsDuringCheckpointWritesAlwaysLeaveALoadableCheckpoint() throws {
        let out = CLI.temporaryDirectory("kill-loop")
        let base = arguments(out: out, Self.vaeas + ["--set", "data.limit=5000", "--set", "train.epochs=400", "--set", "eval.every=0",
                                                     "--set", "train.checkpoint_steps=1", "--set", "train.keep_checkpoints=2",
                                                     "--set", "train.log_every=1"])
        var rng = TestRNG(5)
        var tries = 0, failures: [String] = []
        var job = try BackgroundJob(base, ranks: 2)
        for _ in 0..<8 {
            _ = job.waitForFile(out + "/checkpoints", nonEmpty: true, timeout: 60)
            usleep(UInt32(200_000 + Int(rng.next() % 900_000)))
            for p in job.rankPIDs(matching: out) + [job.process.processIdentifier] { kill(p, SIGKILL) }
            let r = job.wait(timeout: 30)
            if r.status != 9 && r.status != 137 && !r.output.isEmpty && r.output.contains("error") { failures.append(r.output) }
            tries += 1
            job = try BackgroundJob(["train", "--resume", out], ranks: 2)
        }
        job.process.terminate()
        for p in job.rankPIDs(matching: out) { kill(p, SIGKILL) }
        _ = job.wait(timeout: 30)
        let step = try XCTUnwrap(TestCheckpoints.newestStep(out), "no checkpoint left after \(tries) kills")
        let finish = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=\(step + 3)"], ranks: 2)
        XCTAssertEqual(finish.status, 0, finish.output)
        XCTAssertFalse(finish.stdout.contains("skipping"), "only an interrupted write may be skipped, and it leaves no step- directory: \(finish.stdout)")
        print("ResumeTests: \(tries) kills, \(failures.count) failed resumes")
        XCTAssertEqual(failures, [], "a resume after a kill failed")
        let lines = try CLI.jsonLines(out + "/steps.jsonl").map { $0["step"] as! Int }
        XCTAssertEqual(lines, Array(1...(step + 3)), "steps.jsonl: every step once, in order, after \(tries) kills")
    }

    /// A full disk while checkpointing: an error naming the path, non-zero
    /// exit, no partial checkpoint directory, the previous checkpoint intact.
    func testFullDiskWhileCheckpointingFailsCleanly() throws {
        let mountPoint = CLI.temporaryDirectory("tinyfs")
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        mount.arguments = ["mount", "-t", "tmpfs", "-o", "size=1600k", "tmpfs", mountPoint]
        try mount.run(); mount.waitUntilExit()
        guard mount.terminationStatus == 0 else { throw XCTSkip("cannot mount a tmpfs here (needs root): the full-disk case is not run") }
        defer {
            let u = Process()
            u.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            u.arguments = ["umount", mountPoint]
            try? u.run(); u.waitUntilExit()
        }
        let out = mountPoint + "/run"
        let r = try CLI.run(arguments(out: out, ["--set", "train.checkpoint_steps=2", "--set", "train.keep_checkpoints=0",
                                                 "--set", "eval.every=0"]))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains(out + "/checkpoints") && r.stderr.contains("No space left on device"), r.stderr)
        let names = try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints")
        XCTAssertFalse(names.contains { $0.hasPrefix(".tmp-") }, "a partial checkpoint was left: \(names)")
        XCTAssertFalse(names.isEmpty, "the first checkpoint fits and stays: \(names)")
    }

    /// Two runs on one directory: the second is refused while the first runs.
    func testSecondRunOnTheSameDirectoryIsRefused() throws {
        let out = CLI.temporaryDirectory("lock")
        let job = try BackgroundJob(arguments(out: out, ["--set", "data.limit=5000", "--set", "train.epochs=400", "--set", "eval.every=0"]),
                                    ranks: 1)
        XCTAssertTrue(job.waitForFile(out + "/config.yaml", nonEmpty: true, timeout: 60))
        let second = try CLI.run(arguments(out: out))
        XCTAssertNotEqual(second.status, 0)
        XCTAssertTrue(second.stderr.contains("another vaeas-dist run is writing"), second.stderr)
        for p in job.rankPIDs(matching: out) { kill(p, SIGTERM) }   // a clean stop with a checkpoint
        let r = job.wait(timeout: 60)
        XCTAssertEqual(r.status, 75, r.output)
    }

    /// One rank's data missing or truncated (an MPMD launch gives rank 1
    /// another data directory): the job ends within seconds, naming the rank,
    /// the host and the file.
    func testOneRanksBadDataEndsTheJob() throws {
        let dir = CLI.temporaryDirectory("truncated-data") + "/binarized-mnist"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let source = CLI.sharedData + "/binarized-mnist/train-images-idx3-ubyte.gz"
        let data = try XCTUnwrap(bytes(source))
        try data.prefix(50_000).write(to: URL(fileURLWithPath: dir + "/train-images-idx3-ubyte.gz"))
        let out = CLI.temporaryDirectory("mpmd")
        let common = ["train", "--out", out, "--overwrite", "--set", "data.name=binarized-mnist", "--set", "data.limit=600",
                      "--set", "eval.every=0", "--set", "train.epochs=1"]
        let t0 = Date()
        let r = try CLI.run(["--oversubscribe", "--bind-to", "none", "-n", "1", CLI.binary] + common + ["--data-dir", CLI.sharedData]
                            + [":", "-n", "1", CLI.binary] + common + ["--data-dir", CLI.temporaryDirectory("truncated-data")],
                            timeout: 60, executable: "/usr/bin/mpirun")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 30)
        XCTAssertTrue(r.stderr.contains("rank 1 of 2") && r.stderr.contains("train-images-idx3-ubyte.gz"), r.stderr)
    }
}
