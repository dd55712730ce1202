import Foundation
import XCTest

/// `train.stall_timeout` (issue #21): a rank that stops making progress ends
/// the job with exit status 124 and a report naming the rank waited for,
/// instead of a job that spins in an allreduce forever.
final class StallTests: XCTestCase {
    func arguments(out: String, _ extra: [String]) -> [String] {
        ["train", "--config", CLI.repositoryRoot.appendingPathComponent("configs/mnist-vae-quick.yaml").path,
         "--data-dir", CLI.sharedData, "--out", out, "--set", "data.limit=5000", "--set", "eval.every=0"] + extra
    }

    /// `kill -STOP` of rank 1 of 2 (a frozen node): within the timeout plus a
    /// few seconds the job ends with 124; rank 0's report says rank 1 is not
    /// responding and that it waits for rank 1, and the report is also in the
    /// run directory. Before the watchdog the job never ended.
    func testStoppedRankEndsTheJobNamingIt() throws {
        let out = CLI.temporaryDirectory("stall-stop")
        let job = try BackgroundJob(arguments(out: out, ["--set", "train.epochs=400", "--set", "train.stall_timeout=3"]),
                                    ranks: 2)
        XCTAssertTrue(job.waitForFile(out + "/.heartbeat/rank-1.json", nonEmpty: true, timeout: 60))
        usleep(1_500_000)   // a few steps in
        let heartbeat = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/.heartbeat/rank-1.json")))
        let victim = try XCTUnwrap((heartbeat as? [String: Any])?["pid"] as? Int32 ?? ((heartbeat as? [String: Any])?["pid"] as? Int).map(Int32.init))
        let t0 = Date()
        kill(victim, SIGSTOP)
        let r = job.wait(timeout: 60)
        let seconds = Date().timeIntervalSince(t0)
        kill(victim, SIGKILL)   // in case it outlived the job
        XCTAssertEqual(r.status, 124, r.output)
        XCTAssertLessThan(seconds, 20, "the job must end soon after the timeout: \(r.output)")
        let report = try String(contentsOfFile: out + "/stall-rank-0.txt", encoding: .utf8)
        XCTAssertTrue(report.contains("rank 0 ") && report.contains("has made no progress"), report)
        XCTAssertTrue(report.contains("rank 1 (host") && report.contains("NOT RESPONDING"), report)
        XCTAssertTrue(report.contains("waiting for rank 1"), report)
        XCTAssertTrue(r.output.contains("waiting for rank 1"), "the report is printed too: \(r.output)")
        print("StallTests: job ended \(String(format: "%.1f", seconds)) s after SIGSTOP of rank 1 (timeout 3 s)")
    }

    /// One rank stuck outside any communication call (the test hook hangs it
    /// before step 3 with its other threads alive): exit 124, the step and
    /// phase named. Under mpirun -n 1 and plain, since both must end.
    func testSingleStuckRankEndsWith124() throws {
        for ranks in [nil, 1] as [Int?] {
            let out = CLI.temporaryDirectory("stall-one-\(ranks ?? 0)")
            let t0 = Date()
            let r = try CLI.run(arguments(out: out, ["--set", "train.stall_timeout=2"]), ranks: ranks, timeout: 60,
                                environment: ["VAEAS_TEST_STALL": "3"])
            XCTAssertEqual(r.status, 124, r.output)
            XCTAssertLessThan(Date().timeIntervalSince(t0), 30, r.output)
            XCTAssertTrue(r.stderr.contains("step 3, training step, outside any communication call"), r.output)
            XCTAssertTrue(r.stderr.contains("the only rank is stuck outside communication"), r.output)
        }
    }

    /// A run without a stall is not disturbed by a short timeout, and its
    /// heartbeats are removed at the end; 0 turns the watchdog off (no heartbeats).
    func testNormalRunsAreUntouchedAndZeroTurnsItOff() throws {
        let out = CLI.temporaryDirectory("stall-normal")
        let ok = try CLI.run(arguments(out: out, ["--set", "train.stall_timeout=1", "--set", "train.epochs=1"]), ranks: 2)
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/.heartbeat"), "the watchdog ran")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/.heartbeat/rank-0.json"), "heartbeats are removed at the end")
        let off = CLI.temporaryDirectory("stall-off")
        let r = try CLI.run(arguments(out: off, ["--set", "train.stall_timeout=0", "--set", "train.epochs=1"]))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: off + "/.heartbeat"), "no watchdog with 0")
    }
}
