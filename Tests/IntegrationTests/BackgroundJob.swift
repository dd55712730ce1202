import Foundation
import XCTest

/// A `vaeas-dist` run under mpirun in the background, for the signal tests.
final class BackgroundJob {
    let process = Process()
    private let out = Pipe(), err = Pipe()
    private final class Sink: @unchecked Sendable { var data = Data() }
    private let outSink = Sink(), errSink = Sink()
    private let group = DispatchGroup()

    init(_ args: [String], ranks: Int) throws {
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = env
        process.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
        process.arguments = ["--oversubscribe", "--bind-to", "none", "-n", "\(ranks)", CLI.binary] + args
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let (o, e, os, es) = (out, err, outSink, errSink)
        group.enter()
        DispatchQueue.global().async { [group] in os.data = o.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { [group] in es.data = e.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    }

    /// PIDs of the ranks (processes running the binary with `marker` in their arguments), by rank order of start.
    func rankPIDs(matching marker: String) -> [Int32] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
        p.arguments = ["-f", "release/vaeas-dist .*\(marker)"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try? p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return text.split(separator: "\n").compactMap { Int32($0) }.filter { $0 != process.processIdentifier }.sorted()
    }

    func waitForFile(_ path: String, nonEmpty: Bool, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                if !nonEmpty { return true }
                if isDir.boolValue, let c = try? FileManager.default.contentsOfDirectory(atPath: path), c.contains(where: { $0.hasPrefix("step-") }) { return true }
                if !isDir.boolValue, let d = FileManager.default.contents(atPath: path), !d.isEmpty { return true }
            }
            usleep(50_000)
        }
        return false
    }

    func wait(timeout: TimeInterval, file: StaticString = #filePath, line: UInt = #line) -> CLI.Result {
        let what = "mpirun " + (process.arguments ?? []).joined(separator: " ")
        guard let status = CLI.finish(process, pipes: group, deadline: Date().addingTimeInterval(timeout), what: what,
                                      file: file, line: line) else {
            return CLI.Result(status: -1, stdout: "", stderr: "\(what): no exit status (see the test failure)")
        }
        return CLI.Result(status: status, stdout: String(decoding: outSink.data, as: UTF8.self),
                          stderr: String(decoding: errSink.data, as: UTF8.self))
    }
}

enum TestCheckpoints {
    /// The step of the newest complete checkpoint directory of a run.
    static func newestStep(_ run: String) -> Int? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints")) ?? []
        return names.filter { $0.hasPrefix("step-") }.compactMap { Int($0.dropFirst(5)) }.max()
    }
}
