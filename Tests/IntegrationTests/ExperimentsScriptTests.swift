import Foundation
import XCTest

/// scripts/experiments.py: the srun commands it builds, and where a report of
/// partial runs goes.
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

    /// The words of an `srun …` command after srun's own options.
    func afterSrunOptions(_ words: [String]) -> ArraySlice<String> {
        var i = 1
        while i < words.count, words[i].hasPrefix("-") {
            i += ["-n", "-N", "-c", "--ntasks", "--nodes", "--cpus-per-task"].contains(words[i]) ? 2 : 1
        }
        return words[i...]
    }

    /// Every srun command names the vaeas-dist binary before the subcommand.
    func testSrunCommandsNameTheBinary() throws {
        for (experiment, rows, cpus) in [("table1", "1", nil), ("figure23", "vN", "4")] as [(String, String, String?)] {
            var env: [String: String] = [:]
            if let cpus { env["SLURM_CPUS_PER_TASK"] = cpus }
            let r = try python(["scripts/experiments.py", "run", experiment, "--rows", rows, "--launcher", "srun",
                                "--ranks", "2", "--dry-run"], in: root, environment: env)
            XCTAssertEqual(r.status, 0, r.output)
            let commands = r.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { $0.hasPrefix("$ srun ") }.map { $0.dropFirst(2).split(separator: " ").map(String.init) }
            XCTAssertGreaterThanOrEqual(commands.count, 2, r.output)
            for words in commands {
                let rest = afterSrunOptions(words)
                let binary = try XCTUnwrap(rest.first)
                XCTAssertTrue(binary.hasSuffix("/vaeas-dist"), "srun runs '\(binary)', not the binary: \(words.joined(separator: " "))")
                let path = binary.hasPrefix("/") ? binary : root + "/" + binary
                XCTAssertTrue(FileManager.default.isExecutableFile(atPath: path), "\(path) is not the built binary")
                XCTAssertTrue(["train", "eval", "estimate"].contains(rest.dropFirst().first ?? ""), words.joined(separator: " "))
                if let cpus { XCTAssertTrue(words.contains("--cpus-per-task=\(cpus)"), words.joined(separator: " ")) }
            }
        }
        // The commands docs/RESULTS-full-N.md lists too.
        let results = try String(contentsOfFile: root + "/docs/RESULTS-full-N.md", encoding: .utf8)
        let listed = results.split(separator: "\n").filter { $0.hasPrefix("srun ") }
        XCTAssertGreaterThanOrEqual(listed.count, 4, "docs/RESULTS-full-N.md lists an srun command per experiment")
        for line in listed {
            let rest = afterSrunOptions(line.split(separator: " ").map(String.init))
            XCTAssertEqual(rest.first, "./.build/release/vaeas-dist", String(line))
        }
    }

    /// --limit-data N caps a row's V at N: table2's V = 10000 with N = 2000
    /// would be refused (more labels than samples).
    func testLimitDataCapsTheLabelsAtN() throws {
        let r = try python(["scripts/experiments.py", "run", "table2", "--rows", "vae,a1-b1", "--epochs", "1",
                            "--limit-data", "2000", "--dry-run"], in: root)
        XCTAssertEqual(r.status, 0, r.output)
        let trains = r.output.split(separator: "\n").filter { $0.contains("$ ") && $0.contains(" train --config") }
        XCTAssertGreaterThanOrEqual(trains.count, 2, r.output)
        for line in trains {
            XCTAssertTrue(line.contains("objective.labels=2000") && line.contains("data.limit=2000"), String(line))
            XCTAssertFalse(line.contains("objective.labels=10000"), String(line))
        }
    }

    /// A validation run (--limit-data) and `report`: the tracked docs/RESULTS-full-N.md
    /// stays as it was; the report goes to runs/experiments/REPORT-partial.md,
    /// unless --out names docs/RESULTS-full-N.md. Run in a copy of the repository's
    /// scripts, specs and configs, so the real docs are never at risk.
    func testReportOfPartialRunsDoesNotReplaceTheResults() throws {
        let tmp = CLI.temporaryDirectory("experiments-root")
        let fm = FileManager.default
        for sub in ["scripts", "experiments", "configs", "docs"] {
            try fm.createDirectory(atPath: tmp + "/" + sub, withIntermediateDirectories: true)
        }
        for file in ["scripts/experiments.py", "scripts/mpirun.sh"] {
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

        let run = try python(["scripts/experiments.py", "run", "table1", "--rows", "1", "--epochs", "1", "--iw-samples", "2",
                              "--limit-data", "300", "--data-dir", CLI.sharedData], in: tmp, environment: env)
        XCTAssertEqual(run.status, 0, run.output)
        let report = try python(["scripts/experiments.py", "report"], in: tmp, environment: env)
        XCTAssertEqual(report.status, 0, report.output)
        XCTAssertEqual(try String(contentsOfFile: tmp + "/docs/RESULTS-full-N.md", encoding: .utf8), sentinel,
                       "report of a --limit-data run replaced docs/RESULTS-full-N.md: \(report.output)")
        XCTAssertFalse(fm.fileExists(atPath: tmp + "/docs/figures"), "figures of a partial report went to docs/figures")
        let partial = try String(contentsOfFile: tmp + "/runs/experiments/REPORT-partial.md", encoding: .utf8)
        XCTAssertTrue(partial.contains("**Partial report**") && partial.contains("table1/1") && partial.contains("--limit-data"),
                      partial)
        XCTAssertTrue(report.output.contains("runs/experiments/REPORT-partial.md"), report.output)

        // Asked for explicitly, it is written there.
        let forced = try python(["scripts/experiments.py", "report", "--out", "docs/RESULTS-full-N.md"], in: tmp, environment: env)
        XCTAssertEqual(forced.status, 0, forced.output)
        let written = try String(contentsOfFile: tmp + "/docs/RESULTS-full-N.md", encoding: .utf8)
        XCTAssertTrue(written.hasPrefix("# Appendix: the paper's experiments at full N") && written.contains("**Partial report**"), written)
    }
}
