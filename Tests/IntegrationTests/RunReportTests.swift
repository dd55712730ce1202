import Foundation
import XCTest
import _TestSupport

/// What a researcher meets around a run: --version, --dry-run, the summary,
/// run.jsonl, and the pictures and TensorBoard logs of scripts/report_run.py.
final class RunReportTests: XCTestCase {
    func testVersionNamesTheCommit() throws {
        let r = try CLI.run(["--version"])
        XCTAssertEqual(r.status, 0, r.output)
        let line = r.stdout.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertTrue(line.range(of: #"^vaeas-dist \d+\.\d+\.\d+ \(commit [0-9a-f]{12}\)$"#, options: .regularExpression) != nil, line)
    }

    /// A binary copied out of the checkout (scripts/freeze-binary.sh) names
    /// the commit in the file beside it, and no commit without one.
    func testACopiedBinaryNamesTheCommitBesideIt() throws {
        let dir = CLI.temporaryDirectory("frozen-binary")
        let copy = dir + "/vaeas-dist"
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: CLI.binary, toPath: copy)
        let bare = try CLI.run(["--version"], executable: copy)
        XCTAssertEqual(bare.status, 0, bare.output)
        XCTAssertFalse(bare.stdout.contains("(commit"), "a copy outside a checkout has no commit to name: \(bare.stdout)")
        try "0123456789abcdef0123456789abcdef01234567\n".write(toFile: copy + ".commit", atomically: true, encoding: .utf8)
        let frozen = try CLI.run(["--version"], executable: copy)
        XCTAssertEqual(frozen.status, 0, frozen.output)
        XCTAssertTrue(frozen.stdout.hasPrefix("vaeas-dist ") && frozen.stdout.contains("(commit 0123456789ab)"), frozen.stdout)
    }

    /// Every subcommand's --help shows an example.
    func testEveryHelpHasAnExample() throws {
        for sub in ["train", "eval", "estimate", "reconstruct", "sample", "bench", "show-config"] {
            let r = try CLI.run([sub, "--help"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.stdout.contains("Example") && r.stdout.contains("vaeas-dist \(sub)"), "\(sub) --help has no example: \(r.stdout)")
        }
    }

    /// --dry-run checks the config and the data on every rank, prints the
    /// run's size, and writes nothing.
    func testDryRunReportsAndWritesNothing() throws {
        let out = CLI.temporaryDirectory("dry-run") + "/never"
        var args = smallArguments(out: out, extra: ["--set", "objective.kind=vaeas", "--set", "objective.labels=500", "--dry-run"])
        args.removeAll { $0 == "--overwrite" }
        let r = try CLI.run(args, ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        for part in ["2 on 1 host(s)", "1000 training samples", "20 per epoch", "replicated", "250 label rows per rank", "nothing was written"] {
            XCTAssertTrue(r.stdout.contains(part), "dry-run output lacks '\(part)': \(r.stdout)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "--dry-run must not create the output directory")
        // A data problem is found by --dry-run too.
        let bad = try CLI.run(["train", "--dry-run", "--data-dir", "/nonexistent/vaeas", "--set", "data.name=binarized-mnist"], ranks: 2)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("/nonexistent/vaeas"), bad.stderr)
    }

    /// The run ends with a summary table and the next commands; run.jsonl
    /// records each start (command line, version, commit, ranks, hosts,
    /// threads), a resume included.
    func testSummaryAndRunRecord() throws {
        let out = CLI.temporaryDirectory("summary")
        let r = try CLI.run(smallArguments(out: out, extra: ["--set", "objective.kind=vaeas", "--set", "objective.labels=500",
                                                             "--set", "eval.every=1", "--set", "train.log_every=5"]), ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        for part in ["summary of \(out)", "MI (Î)", "AU (test)", "test ELBO", "samples/s", "wall time", "next:", "--resume \(out)"] {
            XCTAssertTrue(r.stdout.contains(part), "summary lacks '\(part)': \(r.stdout)")
        }
        XCTAssertFalse(r.output.contains("info vaeas"), "one voice on the console: \(r.output)")
        let resumed = try CLI.run(["train", "--resume", out, "--set", "train.epochs=2"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let starts = try CLI.jsonLines(out + "/run.jsonl")
        XCTAssertEqual(starts.count, 2)
        XCTAssertEqual(starts.map { $0["ranks"] as? Int }, [2, 1])
        XCTAssertEqual(starts[0]["hosts"] as? String, [String](repeating: ProcessInfo.processInfo.hostName, count: 2).joined(separator: ","))
        XCTAssertNotNil(starts[1]["resumed_from"] as? String)
        XCTAssertTrue((starts[0]["command"] as? String ?? "").contains("--out \(out)"))
        let steps = try CLI.jsonLines(out + "/steps.jsonl")
        XCTAssertTrue(steps.allSatisfy { ($0["grad_norm"] as? Double ?? 0) > 0 && $0["lr"] as? Double == 0.001 && $0["time"] != nil })
    }

    /// scripts/report_run.py: curves, samples and labelled reconstructions as
    /// PNGs of a readable size (matplotlib), and TensorBoard event files.
    func testReportDrawsPicturesAndTensorBoardLogs() throws {
        let out = CLI.temporaryDirectory("report")
        // Fashion-MNIST (labelled; installed by scripts/setup.sh) at its standard location.
        let r = try CLI.run(["train", "--out", out, "--overwrite",
                             "--set", "data.name=fashion-mnist", "--set", "data.limit=600", "--set", "model.latent=8", "--set", "model.hidden=32",
                             "--set", "model.enc_layers=1", "--set", "model.dec_layers=1", "--set", "train.batch=50",
                             "--set", "train.epochs=2", "--set", "train.log_every=4", "--set", "objective.kind=vaeas",
                             "--set", "objective.softmax=tree", "--set", "objective.mi_estimator=ce"])
        XCTAssertEqual(r.status, 0, r.output)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", CLI.repositoryRoot.appendingPathComponent("scripts/report_run.py").path, out]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, text)
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", """
            import sys, os, matplotlib.image as im
            out = sys.argv[1]
            for name, minimum in [("curves.png", (300, 800)), ("samples.png", (600, 600)), ("reconstructions.png", (400, 1000))]:
                a = im.imread(os.path.join(out, name))
                assert a.shape[0] >= minimum[0] and a.shape[1] >= minimum[1], (name, a.shape)
                assert a[..., :3].std() > 0.05, (name, "blank")
            events = [f for f in os.listdir(os.path.join(out, "tensorboard")) if f.startswith("events.out.tfevents")]
            assert events, "no TensorBoard event file"
            import struct
            from tensorboardX.proto import event_pb2
            data = open(os.path.join(out, "tensorboard", events[0]), "rb").read()
            tags, pos = set(), 0
            while pos < len(data):                      # TFRecord: length, CRC, event, CRC
                n = struct.unpack("<Q", data[pos:pos + 8])[0]
                e = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
                tags |= {v.tag for v in e.summary.value}
                pos += 16 + n
            for tag in ["epoch/loss", "epoch/mi", "epoch/test_elbo", "step/loss", "step/grad_norm"]:
                assert tag in tags, (tag, sorted(tags))
            """, out]
        try check.run()
        check.waitUntilExit()
        XCTAssertEqual(check.terminationStatus, 0, "the pictures or the TensorBoard logs are missing or blank")
        XCTAssertTrue(text.contains("curves.png") && text.contains("tensorboard"), text)
    }
}
