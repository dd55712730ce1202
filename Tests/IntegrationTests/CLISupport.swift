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
        let what = ([binary] + args).joined(separator: " ")
        guard let status = finish(p, pipes: group, deadline: Date().addingTimeInterval(timeout), what: what,
                                  file: file, line: line) else {
            return Result(status: -1, stdout: "", stderr: "\(what): no exit status (see the test failure)")
        }
        return Result(status: status, stdout: String(decoding: outSink.data, as: UTF8.self),
                      stderr: String(decoding: errSink.data, as: UTF8.self))
    }

    /// Waits for `p` until `deadline`, then SIGTERM, then SIGKILL, and for the
    /// threads draining its pipes; the exit status, or nil after a test failure.
    /// Never waits without a bound: Foundation learns of an exit only when a
    /// socket it passed to the child reaches end of file, so a daemon the child
    /// started that kept the socket (munged did: the CI run of stop 25 hung in
    /// SlurmTests.setUp) hides the exit for good, and `waitUntilExit` would wait
    /// for ever. An exited child is seen here in /proc as a zombie instead.
    static func finish(_ p: Process, pipes: DispatchGroup, deadline: Date, what: String,
                       file: StaticString = #filePath, line: UInt = #line) -> Int32? {
        func waitFor(_ until: Date) -> Bool {
            var exitedAt: Date?
            while p.isRunning && Date() < until {
                if exitedAt == nil && isZombie(p.processIdentifier) { exitedAt = Date() }
                if let t = exitedAt, Date().timeIntervalSince(t) > 10 { break }
                usleep(20_000)
            }
            return !p.isRunning
        }
        if !waitFor(deadline) {
            if isZombie(p.processIdentifier) {
                XCTFail("\(what) exited, but a process it started still holds the descriptors it inherited "
                        + "(a daemon that did not close them), so Foundation cannot see the exit", file: file, line: line)
                return nil
            }
            XCTFail("\(what) did not finish by its deadline: SIGTERM, then SIGKILL after 10 s", file: file, line: line)
            p.terminate()
            if !waitFor(Date().addingTimeInterval(10)) {
                kill(p.processIdentifier, SIGKILL)
                if !waitFor(Date().addingTimeInterval(10)) {
                    XCTFail("\(what) still not seen to exit 10 s after SIGKILL", file: file, line: line)
                    return nil
                }
            }
        }
        p.waitUntilExit()
        if pipes.wait(timeout: .now() + 30) == .timedOut {
            XCTFail("\(what) exited, but its output pipes are still open in a process it started", file: file, line: line)
            return nil
        }
        return p.terminationStatus
    }

    /// Whether `pid` has exited and not been reaped (state Z in /proc/PID/stat).
    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first == "Z"
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
