import Foundation
import XCTest

/// scripts/study.py end to end with the real binary: a --limit-data run and where
/// the report of partial runs goes. The commands it builds (srun, --limit-data) and
/// the report's placement from fixture runs are tested with pytest
/// (tools/tests/test_study_commands.py, test_study_tables.py).
final class ExperimentsScriptTests: XCTestCase {
    /// Runs python3 with `args` from `directory`; (status, stdout + stderr).
    func python(_ args: [String], in directory: String, environment: [String: String] = [:],
                timeout: TimeInterval = 300) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + args
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        final class Sink: @unchecked Sendable { var data = Data() }
        let sink = Sink()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { sink.data = out.fileHandleForReading.readDataToEndOfFile(); done.signal() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate(); XCTFail("python3 \(args.joined(separator: " ")) did not finish in \(timeout) s") }
        p.waitUntilExit()
        done.wait()
        return (p.terminationStatus, String(decoding: sink.data, as: UTF8.self))
    }

    var root: String { CLI.repositoryRoot.path }

    /// A validation run (--limit-data) and `report full`: the tracked docs/RESULTS-full-N.md
    /// stays as it was; the report goes to runs/experiments/REPORT-partial.md,
    /// unless --out names docs/RESULTS-full-N.md. Run in a copy of the repository's
    /// scripts, tools, specs and configs, so the real docs are never at risk.
    func testReportOfPartialRunsDoesNotReplaceTheResults() throws {
        let tmp = CLI.temporaryDirectory("experiments-root")
        let fm = FileManager.default
        for sub in ["scripts", "experiments", "configs", "docs", "tools"] {
            try fm.createDirectory(atPath: tmp + "/" + sub, withIntermediateDirectories: true)
        }
        for file in ["scripts/study.py", "scripts/mpirun.sh", "tools/vaeas_tools"] {
            try fm.copyItem(atPath: root + "/" + file, toPath: tmp + "/" + file)
        }
        for sub in ["experiments", "configs"] {
            for f in try fm.contentsOfDirectory(atPath: root + "/" + sub) where f.hasSuffix(".yaml") || f.hasSuffix(".md") {
                try fm.copyItem(atPath: root + "/\(sub)/\(f)", toPath: tmp + "/\(sub)/\(f)")
            }
        }
        let sentinel = "# the tracked results\n"
        try sentinel.write(toFile: tmp + "/docs/RESULTS-full-N.md", atomically: true, encoding: .utf8)
        let env = ["VAEAS_BIN": CLI.binary, "OPENBLAS_NUM_THREADS": "1"]

        let run = try python(["scripts/study.py", "run", "table1", "--rows", "1", "--epochs", "1", "--iw-samples", "2",
                              "--limit-data", "300", "--data-dir", CLI.sharedData], in: tmp, environment: env)
        XCTAssertEqual(run.status, 0, run.output)
        let report = try python(["scripts/study.py", "report", "full"], in: tmp, environment: env)
        XCTAssertEqual(report.status, 0, report.output)
        XCTAssertEqual(try String(contentsOfFile: tmp + "/docs/RESULTS-full-N.md", encoding: .utf8), sentinel,
                       "report of a --limit-data run replaced docs/RESULTS-full-N.md: \(report.output)")
        XCTAssertFalse(fm.fileExists(atPath: tmp + "/docs/figures"), "figures of a partial report went to docs/figures")
        let partial = try String(contentsOfFile: tmp + "/runs/experiments/REPORT-partial.md", encoding: .utf8)
        XCTAssertTrue(partial.contains("**Partial report**") && partial.contains("table1/1") && partial.contains("--limit-data"),
                      partial)
        XCTAssertTrue(report.output.contains("runs/experiments/REPORT-partial.md"), report.output)

        // Asked for explicitly, it is written there.
        let forced = try python(["scripts/study.py", "report", "full", "--out", "docs/RESULTS-full-N.md"], in: tmp, environment: env)
        XCTAssertEqual(forced.status, 0, forced.output)
        let written = try String(contentsOfFile: tmp + "/docs/RESULTS-full-N.md", encoding: .utf8)
        XCTAssertTrue(written.hasPrefix("# Appendix: the paper's experiments at full N") && written.contains("**Partial report**"), written)
    }
}
