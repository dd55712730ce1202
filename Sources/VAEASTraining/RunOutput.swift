import VAEASConfig
import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import Foundation
import SafeTensors

/// The files of one run, written by rank 0 only:
/// `config.yaml` (resolved), `metrics.jsonl` (one object per epoch),
/// `steps.jsonl` (every `train.log_every` steps) and `model.safetensors`.
public final class RunOutput {
    public let directory: String
    private var metrics: FileHandle
    private var steps: FileHandle?

    public var configPath: String { directory + "/config.yaml" }
    public var metricsPath: String { directory + "/metrics.jsonl" }
    public var stepsPath: String { directory + "/steps.jsonl" }
    public var checkpointPath: String { directory + "/model.safetensors" }

    /// Creates the directory. A directory that already holds a run's files is
    /// refused unless `overwrite`: outputs of an earlier run are never lost silently.
    public init(directory: String, overwrite: Bool, stepLog: Bool) throws {
        self.directory = directory
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { throw RunOutputError("\(directory): exists and is not a directory") }
            let existing = ["metrics.jsonl", "model.safetensors", "config.yaml", "steps.jsonl"]
                .filter { fm.fileExists(atPath: directory + "/" + $0) }
            if !existing.isEmpty && !overwrite {
                throw RunOutputError("\(directory): already holds \(existing.joined(separator: ", ")) from an earlier run; "
                                     + "choose another --out or pass --overwrite")
            }
        } else {
            do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
                throw RunOutputError("\(directory): cannot create the output directory (\(error.localizedDescription))")
            }
        }
        func open(_ path: String) throws -> FileHandle {
            guard fm.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw RunOutputError("\(path): cannot be written")
            }
            return h
        }
        metrics = try open(directory + "/metrics.jsonl")
        steps = stepLog ? try open(directory + "/steps.jsonl") : nil
    }

    deinit {
        try? metrics.close()
        try? steps?.close()
    }

    public func writeConfig(_ yaml: String) throws {
        do { try yaml.write(toFile: configPath, atomically: true, encoding: .utf8) } catch {
            throw RunOutputError("\(configPath): cannot be written (\(error.localizedDescription))")
        }
    }

    /// Appends one line and flushes it, so a crash loses at most the line being written.
    public func appendMetrics(_ record: JSONRecord) throws { try append(record, to: metrics, path: metricsPath) }
    public func appendStep(_ record: JSONRecord) throws {
        if let steps { try append(record, to: steps, path: stepsPath) }
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
    init(_ d: String) { description = d }
}

/// A JSON object with its keys in insertion order (metrics read best that way).
public struct JSONRecord: Sendable {
    public enum Value: Sendable {
        case int(Int), double(Double), string(String), bool(Bool)
    }
    public private(set) var fields: [(String, Value)] = []
    public init() {}

    public mutating func set(_ key: String, _ v: Int) { fields.append((key, .int(v))) }
    public mutating func set(_ key: String, _ v: Double) { fields.append((key, .double(v))) }
    public mutating func set(_ key: String, _ v: String) { fields.append((key, .string(v))) }
    public mutating func set(_ key: String, _ v: Bool) { fields.append((key, .bool(v))) }

    public var json: String {
        "{" + fields.map { "\(JSONRecord.quote($0.0)): \(JSONRecord.render($0.1))" }.joined(separator: ", ") + "}"
    }

    static func render(_ v: Value) -> String {
        switch v {
        case .int(let i): return "\(i)"
        case .double(let d): return d.isFinite ? "\(d)" : "null"
        case .string(let s): return quote(s)
        case .bool(let b): return b ? "true" : "false"
        }
    }

    static func quote(_ s: String) -> String { JSONText.quoted(s) }
}
