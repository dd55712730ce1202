import Foundation
import XCTest

/// In-epoch progress without a terminal (pipes, SLURM logs): plain lines
/// every VAEAS_PROGRESS_SECONDS, with an ETA, and no carriage returns; the
/// same under mpirun, whose ranks write to a pseudo-terminal even then.
final class ProgressCLITests: XCTestCase {
    /// Two epochs of the full binarized-MNIST training set (about a second each on 2 cores,
    /// so progress lines come every 0.2 s).
    func arguments(_ out: String) -> [String] {
        ["train", "--out", out, "--overwrite", "--data-dir", CLI.sharedData,
         "--set", "data.name=binarized-mnist", "--set", "model.hidden=256", "--set", "model.latent=8",
         "--set", "model.enc_layers=1", "--set", "model.dec_layers=1", "--set", "train.epochs=2", "--set", "eval.every=0"]
    }

    func check(_ r: CLI.Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let progress = lines.filter { $0.hasPrefix("progress: ") }
        XCTAssertFalse(progress.isEmpty, "no plain progress lines without a terminal; stdout:\n\(r.stdout)", file: file, line: line)
        for p in progress {
            XCTAssertNotNil(p.range(of: #"^progress: epoch [12](/2)? step \d+/391 \(\d+%\)  loss [0-9.]+  \d+ samples/s  elapsed \d\d:\d\d  (epoch )?ETA \d\d:\d\d$"#,
                                    options: .regularExpression), p, file: file, line: line)
            if p.hasPrefix("progress: epoch 2") {
                XCTAssertTrue(p.hasPrefix("progress: epoch 2/2") && !p.contains("epoch ETA"),
                              "after the first epoch the ETA covers the run: \(p)", file: file, line: line)
            }
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("epoch 1/2 ") && $0.contains(" ETA ") }, r.stdout, file: file, line: line)
        XCTAssertFalse(r.output.contains("\r"), "a redrawn line in a log: \(r.output.debugDescription)", file: file, line: line)
        XCTAssertFalse(r.output.contains("\u{1B}["), "terminal escapes in a log", file: file, line: line)
    }

    func testPlainProgressLinesWithoutATerminal() throws {
        let r = try CLI.run(arguments(CLI.temporaryDirectory("progress-1")), environment: ["VAEAS_PROGRESS_SECONDS": "0.2"])
        check(r)
    }

    /// mpirun gives rank 0 a pseudo-terminal as stdout even when mpirun's own
    /// output is a pipe: mpirun's stdout decides.
    func testPlainProgressLinesUnderMPIRunWithoutATerminal() throws {
        let r = try CLI.run(arguments(CLI.temporaryDirectory("progress-2")), ranks: 2,
                            environment: ["VAEAS_PROGRESS_SECONDS": "0.2"])
        check(r)
    }
}
