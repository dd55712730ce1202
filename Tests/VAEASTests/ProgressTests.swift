import Foundation
import XCTest
import VAEAS
import VAEASTraining

/// Foundation has a Progress too.
typealias Progress = VAEASTraining.Progress

/// Progress: which mode for which streams, and what the lines say (a fake
/// clock, one second per step).
final class ProgressTests: XCTestCase {
    func mode(_ out: Bool, _ err: Bool, launcher: Bool? = nil, _ env: [String: String] = [:]) -> Progress.Mode {
        Progress.mode(stdoutIsTerminal: out, stderrIsTerminal: err, launcherStdoutIsTerminal: launcher, environment: env)
    }

    func testModeFollowsTheStreamTheLineIsWrittenTo() {
        XCTAssertEqual(mode(true, true), .live(.stdout))
        // A rank under mpirun: stdout a (pseudo-)terminal, stderr a pipe.
        XCTAssertEqual(mode(true, false), .live(.stdout))
        // `train > log` at a terminal: redrawn on stderr, epoch lines in the file.
        XCTAssertEqual(mode(false, true), .live(.stderr))
        // SLURM logs, pipes: plain lines every 30 s.
        XCTAssertEqual(mode(false, false), .plain(seconds: 30))
        XCTAssertEqual(mode(false, false, ["VAEAS_PROGRESS_SECONDS": "1"]), .plain(seconds: 1))
        XCTAssertEqual(mode(false, false, ["VAEAS_PROGRESS_SECONDS": "0.5"]), .plain(seconds: 0.5))
        for bad in ["0", "-3", "soon", "", "inf"] {
            XCTAssertEqual(mode(false, false, ["VAEAS_PROGRESS_SECONDS": bad]), .plain(seconds: 30), bad)
        }
    }

    /// Under mpirun a rank's stdout is mpirun's pseudo-terminal even when
    /// mpirun writes to a file: mpirun's own stdout decides.
    func testUnderMPIRunTheLaunchersStdoutDecides() {
        XCTAssertEqual(mode(true, false, launcher: true), .live(.stdout))
        XCTAssertEqual(mode(true, false, launcher: false), .plain(seconds: 30))
        XCTAssertEqual(mode(true, false, launcher: false, ["VAEAS_PROGRESS_SECONDS": "2"]), .plain(seconds: 2))
        XCTAssertEqual(mode(false, false, launcher: true), .plain(seconds: 30))
    }

    func testEnvironmentForcesAMode() {
        XCTAssertEqual(mode(true, true, ["VAEAS_PROGRESS": "off"]), .off)
        XCTAssertEqual(mode(true, true, ["VAEAS_PROGRESS": "plain", "VAEAS_PROGRESS_SECONDS": "5"]), .plain(seconds: 5))
        XCTAssertEqual(mode(false, false, ["VAEAS_PROGRESS": "live"]), .live(.stdout))
        XCTAssertEqual(mode(true, false, launcher: false, ["VAEAS_PROGRESS": "live"]), .live(.stdout))
    }

    /// A Progress on a fake clock whose lines are collected.
    final class Harness {
        var t0 = Date(timeIntervalSince1970: 1_000_000)
        var clock: Double = 0
        var lines: [(String, Progress.Channel)] = []
        let progress: Progress
        init(_ progress: Progress) {
            self.progress = progress
            progress.now = { [unowned self] in self.t0.addingTimeInterval(self.clock) }
            progress.write = { [unowned self] text, channel in self.lines.append((text, channel)) }
        }
        /// `epochs` epochs of `steps` one-second steps, 10 samples each; `epochs` passed to epochDone.
        func run(epochs: Int, steps: Int, totalEpochs: Int, from firstEpoch: Int = 1) {
            for e in firstEpoch...epochs {
                let start = t0.addingTimeInterval(clock)
                for s in 1...steps {
                    clock += 1
                    progress.step(epoch: e, step: s, of: steps, samples: 10 * s, loss: 1.5, since: start)
                }
                var r = JSONRecord()
                r.set("epoch", e); r.set("loss", 1.5); r.set("recon", 1.0); r.set("kl", 0.5)
                r.set("samples_per_s", 10.0); r.set("seconds", Double(steps))
                progress.epochDone(r, epochs: totalEpochs)
            }
        }
        var text: [String] { lines.map(\.0) }
    }

    func testPlainLinesCarryTheWholeRunsETA() {
        let h = Harness(Progress(mode: .plain(seconds: 2), totalEpochs: 3))
        h.run(epochs: 3, steps: 10, totalEpochs: 3)
        let plain = h.text.filter { $0.hasPrefix("progress:") }
        // Steps 2, 4, 6, 8 of each epoch (step 10 is the epoch line's).
        XCTAssertEqual(plain.count, 12, "\(h.text)")
        XCTAssertTrue(plain.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\r") })
        XCTAssertTrue(plain[0].hasPrefix("progress: epoch 1/3 step 2/10 (20%)  loss 1.500  10 samples/s  elapsed 00:02  ETA 00:28"),
                      plain[0])
        XCTAssertTrue(plain[5].contains("epoch 2/3 step 4/10") && plain[5].hasSuffix("ETA 00:16\n"), plain[5])
        let epochLines = h.text.filter { $0.hasPrefix("epoch ") }
        XCTAssertEqual(epochLines.count, 3)
        XCTAssertTrue(epochLines[0].hasSuffix("ETA 00:20\n"), epochLines[0])
        XCTAssertFalse(epochLines[2].contains("ETA"), "nothing left after the last epoch: \(epochLines[2])")
        XCTAssertTrue(h.lines.allSatisfy { $0.1 == .stdout })
    }

    /// Without totalEpochs (a CLI that does not set it) the first epoch's ETA is
    /// the epoch's, and from the first epoch line on the whole run's.
    func testTheRunsLengthIsLearnedFromTheFirstEpochLine() {
        let h = Harness(Progress(mode: .plain(seconds: 4)))
        h.run(epochs: 2, steps: 10, totalEpochs: 4)
        let plain = h.text.filter { $0.hasPrefix("progress:") }
        XCTAssertTrue(plain[0].hasPrefix("progress: epoch 1 step 4/10") && plain[0].hasSuffix("epoch ETA 00:06\n"), plain[0])
        XCTAssertTrue(h.text.contains { $0.hasPrefix("epoch 1/4 ") && $0.hasSuffix("ETA 00:30\n") }, "\(h.text)")
        XCTAssertTrue(plain.contains { $0.hasPrefix("progress: epoch 2/4 step 8/10") && $0.hasSuffix(" ETA 00:22\n") }, "\(plain)")
    }

    func testMaxStepsEndsTheRunSooner() {
        let h = Harness(Progress(mode: .plain(seconds: 5), totalEpochs: 100, maxSteps: 15))
        h.run(epochs: 1, steps: 10, totalEpochs: 100)
        XCTAssertTrue(h.text.contains { $0.contains("step 5/10") && $0.hasSuffix("ETA 00:10\n") }, "\(h.text)")
    }

    /// A resumed run starts mid-epoch: the rate is measured from there.
    func testResumedMidEpoch() {
        let h = Harness(Progress(mode: .plain(seconds: 2), totalEpochs: 2))
        let start = h.t0
        for s in 6...10 {
            h.clock += 1
            h.progress.step(epoch: 1, step: s, of: 10, samples: 10 * s, loss: 1, since: start)
        }
        XCTAssertTrue(h.text.contains { $0.contains("step 7/10") && $0.hasSuffix("ETA 00:13\n") }, "\(h.text)")
    }

    func testLiveLineIsRedrawnOnItsStreamAndClearedBeforeTheEpochLine() {
        let h = Harness(Progress(mode: .live(.stderr), totalEpochs: 2))
        h.run(epochs: 1, steps: 3, totalEpochs: 2)
        let live = h.lines.filter { $0.1 == .stderr }.map(\.0)
        XCTAssertEqual(live.count, 4, "3 draws and a clear: \(live)")
        XCTAssertTrue(live[0].hasPrefix("\repoch 1/2 [") && live[0].contains("1/3") && live[0].contains("ETA 00:05"), live[0])
        XCTAssertEqual(live[3], "\r\u{1B}[K")
        let out = h.lines.filter { $0.1 == .stdout }.map(\.0)
        XCTAssertEqual(out.count, 1)
        XCTAssertTrue(out[0].hasPrefix("epoch 1/2  loss 1.500"), out[0])
    }

    func testOffShowsEpochLinesOnly() {
        let h = Harness(Progress(mode: .off, totalEpochs: 2))
        h.run(epochs: 2, steps: 50, totalEpochs: 2)
        XCTAssertEqual(h.text.count, 2, "\(h.text)")
    }
}
