import VAEASConfig
import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import Foundation
import SafeTensors

/// The files of one run, written by rank 0 only:
/// `config.yaml` (resolved), `metrics.jsonl` (one object per epoch),
/// `steps.jsonl` (every `train.log_every` steps), `model.safetensors` and
/// `checkpoints/` (training state, for `--resume`).
///
/// Rank 0 holds an exclusive lock on `<dir>/.lock` for the life of the
/// object, so two runs never write one directory.
public final class RunOutput {
    public let directory: String
    private var metrics: FileHandle
    private var steps: FileHandle?
    private let lock: Int32
    /// Complete lines written to each file (what a training-state checkpoint records).
    public private(set) var metricsLines = 0
    public private(set) var stepsLines = 0

    public var configPath: String { directory + "/config.yaml" }
    public var metricsPath: String { directory + "/metrics.jsonl" }
    public var stepsPath: String { directory + "/steps.jsonl" }
    public var checkpointPath: String { directory + "/model.safetensors" }
    public var checkpointsPath: String { directory + "/checkpoints" }

    /// The files of an earlier run that `--overwrite` replaces.
    static let runFiles = ["metrics.jsonl", "model.safetensors", "config.yaml", "steps.jsonl", "checkpoints"]

    /// A new run: creates the directory. A directory that already holds a
    /// run's files is refused unless `overwrite`, which removes them first (so
    /// the directory never mixes two runs): outputs of an earlier run are never
    /// lost silently.
    public init(directory: String, overwrite: Bool, stepLog: Bool) throws {
        self.directory = directory
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { throw RunOutputError("\(directory): exists and is not a directory") }
        } else {
            do { try DurableFile.makeDirectories(directory) } catch {
                throw RunOutputError("--out \(directory): \(error)")
            }
        }
        lock = try RunOutput.takeLock(directory)
        RunOutput.removeTemporaries(directory)
        let existing = RunOutput.runFiles.filter { fm.fileExists(atPath: directory + "/" + $0) }
        if !existing.isEmpty {
            guard overwrite else {
                close(lock)
                throw RunOutputError("\(directory): already holds \(existing.joined(separator: ", ")) from an earlier run; "
                                     + "choose another --out, continue it with --resume \(directory.shellQuoted), or pass --overwrite")
            }
            for f in existing {
                do { try fm.removeItem(atPath: directory + "/" + f) } catch {
                    close(lock)
                    throw RunOutputError("\(directory)/\(f): cannot remove the earlier run's file (\(error.localizedDescription))")
                }
            }
        }
        do {
            metrics = try RunOutput.open(directory + "/metrics.jsonl", keepingLines: 0).0
            steps = stepLog ? try RunOutput.open(directory + "/steps.jsonl", keepingLines: 0).0 : nil
        } catch { close(lock); throw error }
    }

    /// A resumed run: keeps the first `metricsLines` and `stepsLines` lines of
    /// the files (what the checkpoint had seen; later or torn lines belong to
    /// steps that will run again) and appends after them.
    public init(resuming directory: String, metricsLines: Int, stepsLines: Int, stepLog: Bool) throws {
        self.directory = directory
        lock = try RunOutput.takeLock(directory)
        do {
            (metrics, self.metricsLines) = try RunOutput.open(directory + "/metrics.jsonl", keepingLines: metricsLines)
            if stepLog {
                let (h, n) = try RunOutput.open(directory + "/steps.jsonl", keepingLines: stepsLines)
                steps = h
                self.stepsLines = n
            } else {
                steps = nil
            }
        } catch { close(lock); throw error }
        RunOutput.removeTemporaries(directory)
    }

    /// Temporaries of interrupted writes (`model.safetensors.tmp-<pid>`) belong to no run.
    private static func removeTemporaries(_ directory: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix("model.safetensors.tmp-") {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    deinit {
        try? metrics.close()
        try? steps?.close()
        close(lock)
    }

    private static func takeLock(_ directory: String) throws -> Int32 {
        let path = directory + "/.lock"
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw RunOutputError("\(path): cannot create the run's lock file: \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw RunOutputError("\(directory): another vaeas-dist run is writing this directory (it holds \(path)); "
                                 + "wait for it or choose another --out")
        }
        return fd
    }

    /// Opens `path` for appending after its first `keep` complete lines (the
    /// rest, a torn last line included, is cut off); returns the handle and the lines kept.
    private static func open(_ path: String, keepingLines keep: Int) throws -> (FileHandle, Int) {
        let fm = FileManager.default
        var kept = 0, offset = 0
        if keep > 0, let data = fm.contents(atPath: path) {
            for (i, b) in data.enumerated() where b == UInt8(ascii: "\n") {
                kept += 1
                offset = i + 1
                if kept == keep { break }
            }
        }
        if !fm.fileExists(atPath: path) || keep == 0 {
            guard fm.createFile(atPath: path, contents: nil) else {
                throw RunOutputError("\(path): cannot be written (\(String(cString: strerror(errno))))")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw RunOutputError("\(path): cannot be opened for writing (\(String(cString: strerror(errno))))")
        }
        do {
            try h.truncate(atOffset: UInt64(offset))
            try h.seekToEnd()
        } catch {
            throw RunOutputError("\(path): cannot be trimmed to its first \(keep) lines (\(error.localizedDescription))")
        }
        return (h, kept)
    }

    public func writeConfig(_ yaml: String) throws {
        do { try yaml.write(toFile: configPath, atomically: true, encoding: .utf8) } catch {
            throw RunOutputError("\(configPath): cannot be written (\(error.localizedDescription))")
        }
    }

    /// Appends one line and flushes it, so a crash loses at most the line being written.
    public func appendMetrics(_ record: JSONRecord) throws {
        try append(record, to: metrics, path: metricsPath)
        metricsLines += 1
    }

    public func appendStep(_ record: JSONRecord) throws {
        guard let steps else { return }
        try append(record, to: steps, path: stepsPath)
        stepsLines += 1
    }

    private func append(_ record: JSONRecord, to handle: FileHandle, path: String) throws {
        do {
            try handle.write(contentsOf: Data((record.json + "\n").utf8))
            try handle.synchronize()
        } catch {
            throw RunOutputError("\(path): write failed (\(error.localizedDescription))")
        }
    }
}

public struct RunOutputError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A JSON object with its keys in insertion order (metrics read best that way).
public struct JSONRecord: Sendable {
    public enum Value: Sendable {
        case int(Int), double(Double), string(String), bool(Bool)
        /// Already JSON (an object or array), written as is.
        case json(String)
    }
    public private(set) var fields: [(String, Value)] = []
    public init() {}

    public mutating func set(_ key: String, _ v: Int) { fields.append((key, .int(v))) }
    public mutating func set(_ key: String, _ v: Double) { fields.append((key, .double(v))) }
    public mutating func set(_ key: String, _ v: String) { fields.append((key, .string(v))) }
    public mutating func set(_ key: String, _ v: Bool) { fields.append((key, .bool(v))) }
    public mutating func set(_ key: String, json: String) { fields.append((key, .json(json))) }

    public var json: String {
        "{" + fields.map { "\(JSONRecord.quote($0.0)): \(JSONRecord.render($0.1))" }.joined(separator: ", ") + "}"
    }

    static func render(_ v: Value) -> String {
        switch v {
        case .int(let i): return "\(i)"
        case .double(let d): return d.isFinite ? "\(d)" : "null"
        case .string(let s): return quote(s)
        case .bool(let b): return b ? "true" : "false"
        case .json(let j): return j
        }
    }

    static func quote(_ s: String) -> String { JSONText.quoted(s) }
}
