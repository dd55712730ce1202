import Foundation
import XCTest
import _TestSupport

/// Runs the `vaeas-dist` built beside this test bundle (or $VAEAS_BIN),
/// optionally under mpirun, with a deadline so a hung rank fails the test
/// instead of the suite.
enum CLI {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var output: String { stdout + stderr }
    }

    static let repositoryRoot = _TestSupport.repositoryRoot
    static let sharedData = _TestSupport.sharedData

    static var binary: String {
        if let b = ProcessInfo.processInfo.environment["VAEAS_BIN"] { return b }
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("vaeas-dist").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return repositoryRoot.appendingPathComponent(".build/release/vaeas-dist").path
    }

    /// `environment` adds variables, or removes them (nil), after the defaults
    /// below (e.g. `["OPENBLAS_NUM_THREADS": nil]` lets vaeas-dist choose).
    static func run(_ args: [String], ranks: Int? = nil, timeout: TimeInterval = 180, executable: String? = nil,
                    environment: [String: String?] = [:], prefix: [String] = [],
                    file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        let binary = executable ?? CLI.binary
        let p = Process()
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OPENBLAS_NUM_THREADS"] = "1"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        if let ranks {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = prefix + ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", "\(ranks)", binary] + args
        } else if !prefix.isEmpty {
            // A wrapper such as `taskset -c 0`.
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = prefix + [binary] + args
        } else {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = args
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Drain both pipes while the process runs, so a chatty child never blocks.
        final class Sink: @unchecked Sendable { var data = Data() }
        let outSink = Sink(), errSink = Sink()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outSink.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errSink.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            p.terminate()
            XCTFail("vaeas-dist \(args.joined(separator: " ")) did not finish in \(timeout) s", file: file, line: line)
        }
        p.waitUntilExit()
        group.wait()
        return Result(status: p.terminationStatus, stdout: String(decoding: outSink.data, as: UTF8.self),
                      stderr: String(decoding: errSink.data, as: UTF8.self))
    }

    static func temporaryDirectory(_ name: String) -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("vaeas-it-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: d)
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// A JSON-lines file without the fields that measure wall-clock time
    /// (`seconds`, `samples_per_s`, `elapsed`, `eval_seconds`, `time`): what
    /// must be bit-identical between two runs of the same trajectory.
    static func withoutTimes(_ path: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let timing = try NSRegularExpression(pattern: #", "(seconds|samples_per_s|elapsed|eval_seconds|time)": [^,}]*"#)
        return timing.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "")
    }

    /// The last line of `stdout` as a JSON object (a test failure, not a crash, when there is none).
    static func lastJSON(_ r: Result, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let text = try XCTUnwrap(r.stdout.split(separator: "\n").last, "no output: \(r.output)", file: file, line: line)
        let object = try? JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(object as? [String: Any], "last line is not a JSON object: \(r.output)", file: file, line: line)
    }

    /// JSON lines of a file as dictionaries.
    static func jsonLines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }
}

/// A small model on real binarized MNIST that trains in seconds.
/// 600 samples, 12 steps per epoch, 3 epochs, a step line each, evaluation every epoch: a run takes about a second.
func resumableRunArguments(out: String, _ extra: [String] = []) -> [String] {
    var a = ["train", "--out", out, "--overwrite", "--data-dir", CLI.sharedData]
    for s in ["data.name=binarized-mnist", "data.limit=600", "model.latent=8", "model.hidden=32", "model.enc_layers=2",
              "model.dec_layers=2", "train.batch=50", "train.log_every=1", "train.epochs=3", "eval.every=1"] {
        a += ["--set", s]
    }
    return a + extra
}

func smallArguments(out: String, extra: [String] = []) -> [String] {
    ["train", "--out", out, "--overwrite", "--data-dir", CLI.sharedData,
     "--set", "data.name=binarized-mnist", "--set", "data.limit=1000",
     "--set", "model.latent=8", "--set", "model.hidden=64", "--set", "model.enc_layers=2", "--set", "model.dec_layers=2",
     "--set", "train.batch=50", "--set", "train.epochs=1", "--set", "eval.every=0"] + extra
}
