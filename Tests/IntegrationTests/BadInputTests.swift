import Foundation
import XCTest

/// Bad input through the command line: a clear message naming the file or
/// key, a non-zero exit, and no lost output.
final class BadInputTests: XCTestCase {
    /// An IDX images file with the given header and `dataBytes` bytes of pixels.
    func writeIDX(_ path: String, magic: UInt32, dims: [UInt32], dataBytes: Int) {
        var bytes: [UInt8] = []
        func be(_ v: UInt32) { bytes += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        be(magic)
        dims.forEach(be)
        bytes += [UInt8](repeating: 255, count: dataBytes)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)), path)
    }

    func dataDir(_ name: String) -> String {
        let d = CLI.temporaryDirectory(name) + "/binarized-mnist"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    func train(dataDir: String, extra: [String] = [], ranks: Int? = nil) throws -> CLI.Result {
        var args = smallArguments(out: CLI.temporaryDirectory("bad-out"), extra: extra)
        args[args.firstIndex(of: "--data-dir")! + 1] = dataDir
        return try CLI.run(args, ranks: ranks, timeout: 120)
    }

    func assertFails(_ r: CLI.Result, mentions parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, "expected a non-zero exit; output: \(r.output)", file: file, line: line)
        for p in parts { XCTAssertTrue(r.stderr.contains(p), "stderr lacks '\(p)': \(r.stderr)", file: file, line: line) }
    }

    /// --overwrite removes the earlier run's files before the new run starts,
    /// so a new run that fails never leaves its config beside the old model.
    func testOverwriteNeverMixesTwoRuns() throws {
        let out = CLI.temporaryDirectory("overwrite-mix")
        XCTAssertEqual(try CLI.run(smallArguments(out: out)).status, 0)
        XCTAssertNotNil(FileManager.default.contents(atPath: out + "/model.safetensors"))
        let failed = try CLI.run(smallArguments(out: out, extra: ["--set", "train.lr=1e30", "--set", "model.latent=6"]))
        assertFails(failed, mentions: ["non-finite"])
        XCTAssertNil(FileManager.default.contents(atPath: out + "/model.safetensors"),
                     "the earlier run's model must not sit beside the failed run's config")
        XCTAssertTrue(try String(contentsOfFile: out + "/config.yaml", encoding: .utf8).contains("latent: 6"))
    }

    /// More labels than training samples leaves labels no sample carries.
    func testMoreLabelsThanSamplesIsRefused() throws {
        let r = try CLI.run(smallArguments(out: CLI.temporaryDirectory("labels-n"),
                                           extra: ["--set", "objective.kind=vaeas", "--set", "objective.labels=5000"]))
        assertFails(r, mentions: ["objective.labels", "5000 labels for 1000 training samples"])
    }

    func testMissingDataDirectory() throws {
        assertFails(try train(dataDir: "/nonexistent/vaeas-data"), mentions: ["/nonexistent/vaeas-data"])
    }

    func testMissingFile() throws {
        let d = dataDir("missing")
        assertFails(try train(dataDir: d), mentions: [d + "/train-images-idx3-ubyte"])
    }

    func testWrongMagicUnderTwoRanks() throws {
        let d = dataDir("magic")
        writeIDX(d + "/train-images-idx3-ubyte", magic: 0x0000_0801, dims: [10], dataBytes: 10)
        let r = try train(dataDir: d, ranks: 2)
        assertFails(r, mentions: [d + "/train-images-idx3-ubyte", "magic", "0x00000803"])
        XCTAssertEqual(r.stderr.components(separatedBy: "error:").count - 1, 1, "printed once, by rank 0: \(r.stderr)")
    }

    func testTruncatedImages() throws {
        let d = dataDir("trunc")
        writeIDX(d + "/train-images-idx3-ubyte", magic: 0x0000_0803, dims: [10, 28, 28], dataBytes: 784 * 9 + 100)
        assertFails(try train(dataDir: d), mentions: [d + "/train-images-idx3-ubyte", "truncated"])
    }

    func testDimensionsDisagreeWithByteCount() throws {
        let d = dataDir("long")
        writeIDX(d + "/train-images-idx3-ubyte", magic: 0x0000_0803, dims: [2, 28, 28], dataBytes: 784 * 3)
        assertFails(try train(dataDir: d), mentions: [d + "/train-images-idx3-ubyte", "1568"])
    }

    func testUnknownConfigKeyAndImpossibleValues() throws {
        assertFails(try train(dataDir: CLI.sharedData, extra: ["--set", "model.latnet=3"]), mentions: ["model.latnet", "model.latent"])
        assertFails(try train(dataDir: CLI.sharedData, extra: ["--set", "train.batch=0"]), mentions: ["train.batch"])
        assertFails(try train(dataDir: CLI.sharedData, extra: ["--set", "model.activation=sigmoid"]),
                    mentions: ["model.activation", "tanh", "relu"])
        assertFails(try train(dataDir: CLI.sharedData, extra: ["--set", "train.lr=nan"]), mentions: ["train.lr"])
    }

    func testUnknownKeyInConfigFileNamesTheFile() throws {
        let path = CLI.temporaryDirectory("cfg") + "/bad.yaml"
        try "model:\n  latent: 8\n  hiden: 64\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try CLI.run(["train", "--config", path, "--out", CLI.temporaryDirectory("cfg-out")])
        assertFails(r, mentions: [path, "model.hiden", "model.hidden"])
    }

    func testExistingRunIsNotOverwrittenWithoutFlag() throws {
        let out = CLI.temporaryDirectory("keep")
        try "previous".write(toFile: out + "/metrics.jsonl", atomically: true, encoding: .utf8)
        var args = smallArguments(out: out)
        args.removeAll { $0 == "--overwrite" }
        assertFails(try CLI.run(args), mentions: [out, "--overwrite"])
        XCTAssertEqual(try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8), "previous")
    }

    /// A diverging run stops with a non-zero exit before applying the NaN;
    /// the last checkpoint stays as it was and resumable, and `--resume
    /// --allow-config-change train.lr --set train.lr=…` with a lower rate
    /// continues the run. (The rate the diverged attempt asked for stays in
    /// config.yaml: a plain `--resume` would diverge again, and says so in its
    /// "changed from the checkpoint's config" line.)
    func testNaNInTrainingStopsWithError() throws {
        let out = CLI.temporaryDirectory("nan")
        let good = try CLI.run(smallArguments(out: out), ranks: 2)
        XCTAssertEqual(good.status, 0, good.output)
        let before = FileManager.default.contents(atPath: out + "/model.safetensors")
        XCTAssertNotNil(before)
        let r = try CLI.run(["train", "--resume", out, "--allow-config-change", "train.lr", "--set", "train.lr=1e30",
                             "--set", "train.epochs=3"], ranks: 2)
        assertFails(r, mentions: ["non-finite", "train.lr"])
        XCTAssertEqual(FileManager.default.contents(atPath: out + "/model.safetensors"), before,
                       "the diverged run must not replace the checkpoint with NaNs")
        let plain = try CLI.run(["train", "--resume", out, "--set", "train.epochs=2"], ranks: 2)
        XCTAssertTrue(plain.stdout.contains("train.lr: 0.001 → 1.0e+30"), plain.stdout)
        let again = try CLI.run(["train", "--resume", out, "--set", "train.epochs=2", "--allow-config-change", "train.lr",
                                 "--set", "train.lr=0.0005"], ranks: 2)
        XCTAssertEqual(again.status, 0, again.output)
        let epochs = try CLI.jsonLines(out + "/metrics.jsonl").map { $0["epoch"] as! Int }
        XCTAssertEqual(epochs, [1, 2], "the diverged attempt leaves no line behind")
    }

    /// Issue #21's smaller items: an --out below a regular file is named as
    /// such (it was "NSCocoaErrorDomain 512"); the summary's resume command
    /// is shell-quoted and, after a train.max_steps stop, lifts the cap (it
    /// raised train.epochs, which --resume then refused); followed as printed,
    /// it continues the run.
    func testPrintedCommandsWorkAsPrinted() throws {
        let root = CLI.temporaryDirectory("printed-commands")
        let file = root + "/a-file"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        var args = smallArguments(out: file + "/run")
        assertFails(try CLI.run(args), mentions: ["\(file) exists and is not a directory"])
        let out = root + "/run with space"
        args = smallArguments(out: out, extra: ["--set", "train.max_steps=5", "--set", "train.epochs=2"])
        let r = try CLI.run(args)
        XCTAssertEqual(r.status, 0, r.output)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.contains("vaeas-dist train --resume") }, r.stdout)
        XCTAssertTrue(line.contains("--resume '\(out)' --set train.max_steps=0"), String(line))
        let resumed = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=0"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.stdout.contains("--resume '\(out)' --set train.epochs=12"), resumed.stdout)
    }

    /// An error only one rank knows of, mid-run (injected on rank 1 of 2):
    /// that rank prints it with its rank and host and says it ends the job,
    /// and the job ends at once with a non-zero status, not with a bare
    /// MPI_Abort banner or a hang (issue #21's smaller items).
    func testAnErrorOnlyOneRankSeesEndsTheJobNamingIt() throws {
        let out = CLI.temporaryDirectory("one-rank-error")
        let t0 = Date()
        let r = try CLI.run(smallArguments(out: out, extra: ["--set", "train.epochs=3"]), ranks: 2,
                            environment: ["VAEAS_TEST_FAIL": "5@1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 30)
        XCTAssertTrue(r.stderr.contains("error: rank 1 of 2") && r.stderr.contains("injected failure before step 5"), r.stderr)
        XCTAssertTrue(r.stderr.contains("rank 1 ends the job (MPI_Abort)"), r.stderr)
    }
}
