import CZlib
import Foundation
import SafeTensors
import VAEASCore
import VAEASDistributed

/// Where a run stands between two steps: with the tensors, everything the next
/// step depends on. Randomness needs no saved stream: every draw (the epoch's
/// permutation, ε, the dynamic binarization) is Philox at a counter of
/// (seed, purpose, epoch, sample index, draw), so (epoch, stepInEpoch) is enough.
public struct TrainingPosition: Codable, Equatable, Sendable {
    /// Optimizer steps taken.
    public var globalStep: Int
    /// The epoch in progress (1-based) and how many of its steps are done.
    public var epoch: Int
    public var stepInEpoch: Int
    /// The epoch's loss sums so far (for its `metrics.jsonl` line), bit for bit.
    public var epochTotals: ExactStats
    /// Seconds of training before this point (for `elapsed`).
    public var elapsed: Double
    /// Lines of `metrics.jsonl` and `steps.jsonl` that belong to the run up to here.
    public var metricsLines: Int
    public var stepsLines: Int

    /// The previous epoch's end (evaluation, `metrics.jsonl` line, model.safetensors) when the
    /// checkpoint was written before it; nil otherwise, and in checkpoints older than this field.
    public var pendingEpochEnd: EpochEnd? = nil

    public static let start = TrainingPosition(globalStep: 0, epoch: 1, stepInEpoch: 0, epochTotals: ExactStats(StepStats()),
                                               elapsed: 0, metricsLines: 0, stepsLines: 0)
}

extension TrainingPosition {
    /// The position with its pending epoch end settled against `metrics.jsonl`:
    /// the end writes model.safetensors and then the epoch's line, so a complete
    /// line for that epoch right after the checkpoint's lines means the end was
    /// done (the run went on, or finished, after the checkpoint): it counts as
    /// written and is not done again. Otherwise unchanged. Rank 0 reads the file.
    public func settlingPendingEnd(metricsPath: String) -> TrainingPosition {
        guard let end = pendingEpochEnd, let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return self }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        // A complete line is followed by "\n": the split has an element after it.
        guard lines.count > metricsLines + 1,
              let object = try? JSONSerialization.jsonObject(with: Data(lines[metricsLines].utf8)) as? [String: Any],
              object["epoch"] as? Int == end.epoch else { return self }
        var settled = self
        settled.metricsLines += 1
        settled.pendingEpochEnd = nil
        return settled
    }
}

/// An epoch whose steps are done and whose end is not (issue #21, defect 4): the
/// epoch's checkpoint is written before its evaluation, so a stop signal during
/// the evaluation needs no further wait; a resume from it does the end first.
public struct EpochEnd: Codable, Equatable, Sendable {
    public var epoch: Int
    /// The epoch's loss sums and samples, those done before a resume within it, and its training seconds.
    public var totals: ExactStats
    public var samplesBefore: Int
    public var trainSeconds: Double
}

/// `StepStats` with its Doubles as bit patterns, so JSON round-trips them exactly.
public struct ExactStats: Codable, Equatable, Sendable {
    var recon: UInt64, kl: UInt64, count: Int, crossEntropy: UInt64, hHat: UInt64, rows: Int
    public init(_ s: StepStats) {
        recon = s.recon.bitPattern; kl = s.kl.bitPattern; count = s.count
        crossEntropy = s.crossEntropy.bitPattern; hHat = s.hHat.bitPattern; rows = s.rows
    }
    public var stats: StepStats {
        var s = StepStats()
        s.recon = Double(bitPattern: recon); s.kl = Double(bitPattern: kl); s.count = count
        s.crossEntropy = Double(bitPattern: crossEntropy); s.hHat = Double(bitPattern: hHat); s.rows = rows
        return s
    }
}

/// `manifest.json` of a training-state checkpoint, written last: a directory
/// without it is incomplete; a file whose size or CRC-32 differs is corrupt.
public struct StateManifest: Codable, Sendable {
    public static let currentFormat = "vaeas-dist-state/1"
    public struct FileEntry: Codable, Sendable {
        public var name: String
        public var bytes: Int
        public var crc32: UInt32
    }
    /// One rank's shard of the partitioned output layer: the global rows it
    /// holds, as [lo, hi) ranges in storage order.
    public struct Shard: Codable, Sendable {
        public var rank: Int
        public var file: String
        public var rows: [[Int]]
    }
    public var format: String
    public var position: TrainingPosition
    public var ranks: Int
    /// The resolved config of the run (YAML).
    public var config: String
    public var files: [FileEntry]
    /// Partitioned output layer (VAE-AS): V, h, the layer kind and its shards.
    public var labels: Int?
    public var width: Int?
    public var softmax: String?
    /// Adam's step count t of the partitioned layer (0 before its first update).
    public var outputAdamStep: Int?
    public var shards: [Shard]
    /// What the checkpoint must share with a run that resumes it (nil: written before issue #21's identities).
    public var identity: RunIdentity?
}

/// Sharded, atomic training-state checkpoints (PyTorch DCP's layout):
///
///     checkpoints/step-000000123/
///       replicated.safetensors    rank 0: every replicated tensor, its Adam exp_avg and exp_avg_sq
///       shard-R-of-P.safetensors  rank R: its rows of the partitioned layer, with their moments
///       manifest.json             rank 0, last: position, config, run identity, shards, sizes and CRC-32s
///       manifest.crc32            rank 0: the manifest's own CRC-32 (a hand-edited manifest is refused)
///
/// Written into `.tmp-step-…`, each file fsynced, renamed into place, parent
/// fsynced. A V × h layer never passes through one rank. Loading at another
/// rank count re-slices the rows (resharding).
public enum TrainingCheckpoint {
    public static func directoryName(step: Int) -> String { String(format: "step-%09d", step) }

    /// Writes the state of `step` at `position` under `runDirectory/checkpoints`
    /// and keeps the newest `keep` (0 = all). Collective; returns the directory.
    @discardableResult
    public static func save(_ step: DataParallelStep, position: TrainingPosition, config: String, identity: RunIdentity?,
                            runDirectory: String, keep: Int) throws -> String {
        let comm = step.comm, model = step.model
        let root = runDirectory + "/checkpoints"
        let name = directoryName(step: position.globalStep)
        let final = root + "/" + name, tmp = root + "/.tmp-" + name
        var sealed = false
        // A failed write (a full disk, a vanished directory) leaves no partial directory behind.
        defer { if !sealed && comm.isRoot { try? FileManager.default.removeItem(atPath: tmp) } }
        _ = try comm.rootOnly {
            try makeDirectory(root)
            try? FileManager.default.removeItem(atPath: tmp)   // a stale one from a crash
            try makeDirectory(tmp)
        }
        // Every rank writes its shard; all agree on the outcome before rank 0 seals the directory.
        var shard: (file: String, rows: [[Int]], bytes: Int, crc: UInt32, adamStep: Int)? = nil
        var rowsByRank: [[[Int]]]? = nil
        if let layer = model.classifier?.output {
            let file = "shard-\(comm.rank)-of-\(comm.size).safetensors"
            shard = try comm.agree {
                let (bytes, rows, adamStep) = try shardBytes(layer, rank: comm.rank)
                try DurableFile.write(bytes, to: tmp + "/" + file)
                return (file, rows, bytes.count, DurableFile.crc32(bytes), adamStep)
            }
            // Each rank says which global rows it saved (the layer knows; the manifest records it).
            rowsByRank = try gatherRows(shard!.rows, comm: comm)
        }
        // The replicated parameters with their Adam moments, whole on rank 0 (gathered there under ZeRO stage 1).
        let replicated = try step.replicatedState(root: 0)
        // Shard sizes, CRCs and row ranges to rank 0 (a few numbers per rank).
        var table = [Double](repeating: 0, count: 2 * comm.size)
        if let shard { table[2 * comm.rank] = Double(shard.bytes); table[2 * comm.rank + 1] = Double(shard.crc) }
        table = comm.sum(table)
        let labels = model.classifier?.output.labels
        _ = try comm.rootOnly {
            var files: [StateManifest.FileEntry] = []
            var shards: [StateManifest.Shard] = []
            if let rowsByRank {
                for r in 0..<comm.size {
                    let file = "shard-\(r)-of-\(comm.size).safetensors"
                    files.append(.init(name: file, bytes: Int(table[2 * r]), crc32: UInt32(table[2 * r + 1])))
                    shards.append(.init(rank: r, file: file, rows: rowsByRank[r]))
                }
            }
            let replicated = replicated!.serialized()
            try DurableFile.write(replicated, to: tmp + "/replicated.safetensors")
            files.insert(.init(name: "replicated.safetensors", bytes: replicated.count, crc32: DurableFile.crc32(replicated)), at: 0)
            let manifest = StateManifest(format: StateManifest.currentFormat, position: position, ranks: comm.size,
                                         config: config, files: files, labels: labels,
                                         width: model.classifier?.output.width,
                                         softmax: model.spec.classifier?.softmax.rawValue,
                                         outputAdamStep: shard.flatMap { $0.adamStep > 0 ? $0.adamStep : nil }, shards: shards,
                                         identity: identity)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let manifestBytes = [UInt8](try encoder.encode(manifest))
            try DurableFile.write(manifestBytes, to: tmp + "/manifest.json")
            try DurableFile.write(Array((RunIdentity.hex(DurableFile.crc32(manifestBytes)) + "\n").utf8), to: tmp + "/manifest.crc32")
            if FileManager.default.fileExists(atPath: final) { try FileManager.default.removeItem(atPath: final) }
            guard rename(tmp, final) == 0 else {
                throw CheckpointError(path: final, message: "cannot rename \(tmp) into place: \(String(cString: strerror(errno)))")
            }
            DurableFile.syncDirectory(root)
            if keep > 0 { prune(root, keep: keep) }
        }
        sealed = true
        return final
    }

    /// The newest checkpoint under `runDirectory/checkpoints` whose manifest
    /// parses and whose files have the recorded sizes and CRC-32s, and what
    /// was skipped on the way (newest first) with the reason.
    /// `path` and `manifest` are nil when none is intact; `count` is how many there were.
    public static func newestIntact(in runDirectory: String) -> (path: String?, manifest: StateManifest?, skipped: [String], count: Int) {
        let root = runDirectory + "/checkpoints"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { $0.hasPrefix("step-") }.sorted(by: >)
        var skipped: [String] = []
        for name in names {
            let dir = root + "/" + name
            do {
                return (dir, try verify(dir), skipped, names.count)
            } catch {
                skipped.append("\(error)")
            }
        }
        return (nil, nil, skipped, names.count)
    }

    /// The kept checkpoint of `step` (`--resume --from-step`), verified.
    /// - Throws: `CheckpointError` naming the directory and listing the kept
    ///   steps when there is none, or why it is not intact.
    public static func kept(step: Int, in runDirectory: String) throws -> String {
        let root = runDirectory + "/checkpoints", dir = root + "/" + directoryName(step: step)
        guard FileManager.default.fileExists(atPath: dir) else {
            let kept = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("step-") }
                .sorted().compactMap { Int($0.dropFirst(5)) }.map(String.init)
            throw CheckpointError(path: dir, message: "no such checkpoint; kept steps: "
                                  + (kept.isEmpty ? "none" : kept.joined(separator: ", ")))
        }
        _ = try verify(dir)
        return dir
    }

    /// Moves the checkpoints after `step` into `checkpoints/abandoned-DATE/`
    /// (`--from-step`: they belong to the trajectory being abandoned). Returns
    /// that directory and the names moved.
    public static func setAsideNewer(than step: Int, in runDirectory: String) throws -> (directory: String, names: [String]) {
        let root = runDirectory + "/checkpoints", fm = FileManager.default
        let newer = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("step-") }
            .filter { (Int($0.dropFirst(5)) ?? 0) > step }.sorted()
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.locale = Locale(identifier: "en_US_POSIX")
        let aside = root + "/abandoned-" + f.string(from: Date())
        guard !newer.isEmpty else { return (aside, []) }
        try makeDirectory(aside)
        for name in newer {
            do { try fm.moveItem(atPath: root + "/" + name, toPath: aside + "/" + name) } catch {
                throw CheckpointError(path: root + "/" + name, message: "cannot move it to \(aside): \(error.localizedDescription)")
            }
        }
        DurableFile.syncDirectory(root)
        return (aside, newer)
    }

    /// Reads and checks a checkpoint directory: the manifest against its
    /// checksum (`manifest.crc32`) and its directory's step, then every
    /// file's size and CRC-32.
    public static func verify(_ dir: String) throws -> StateManifest {
        let manifestPath = dir + "/manifest.json"
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw CheckpointError(path: dir, message: "incomplete: no manifest.json (the write was interrupted)")
        }
        let checksum = FileManager.default.contents(atPath: dir + "/manifest.crc32")
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        let crc = RunIdentity.hex(data.withUnsafeBytes { DurableFile.crc32($0) })
        if let checksum, checksum != crc {
            throw CheckpointError(path: manifestPath, message: "CRC-32 \(crc), manifest.crc32 says \(checksum): the manifest was "
                                  + "changed after it was written (edited by hand, or corrupt)")
        }
        let manifest: StateManifest
        do { manifest = try JSONDecoder().decode(StateManifest.self, from: data) } catch {
            throw CheckpointError(path: manifestPath, message: "unreadable manifest (\(error))")
        }
        guard manifest.format == StateManifest.currentFormat else {
            throw CheckpointError(path: manifestPath, message: "format '\(manifest.format)', expected '\(StateManifest.currentFormat)'")
        }
        // Checkpoints with a run identity were written with a checksum beside them.
        if checksum == nil && manifest.identity != nil {
            throw CheckpointError(path: dir + "/manifest.crc32", message: "missing: the manifest cannot be checked")
        }
        let name = URL(fileURLWithPath: dir).lastPathComponent
        if name.hasPrefix("step-"), let n = Int(name.dropFirst(5)), n != manifest.position.globalStep {
            throw CheckpointError(path: manifestPath, message: "position.globalStep \(manifest.position.globalStep) does not match "
                                  + "the directory's step \(n)")
        }
        for f in manifest.files {
            let path = dir + "/" + f.name
            guard let bytes = FileManager.default.contents(atPath: path) else {
                throw CheckpointError(path: path, message: "missing (listed in manifest.json)")
            }
            guard bytes.count == f.bytes else {
                throw CheckpointError(path: path, message: "\(bytes.count) bytes, manifest.json says \(f.bytes) (truncated or overwritten)")
            }
            let crc = bytes.withUnsafeBytes { DurableFile.crc32($0) }
            guard crc == f.crc32 else {
                throw CheckpointError(path: path, message: "CRC-32 \(crc), manifest.json says \(f.crc32) (corrupt)")
            }
        }
        return manifest
    }

    /// Restores parameters, Adam state and the partitioned rows (re-sliced for
    /// this rank count) from a verified checkpoint. Local (no collective): wrap
    /// it in `Communicator.agree` so that one rank's failure stops every rank.
    public static func restore(_ step: DataParallelStep, from dir: String, manifest: StateManifest) throws {
        let model = step.model
        do {
            let file = try SafeTensorsFile.load(path: dir + "/replicated.safetensors")
            // The position must be one this run could have reached: the manifest against the tensors' file and the data.
            let position = manifest.position, perEpoch = step.stepsPerEpoch
            if let g = file.metadata["global_step"].flatMap(Int.init), g != position.globalStep {
                throw CheckpointError(path: dir + "/manifest.json", message: "position.globalStep \(position.globalStep), but "
                                      + "replicated.safetensors was written at step \(g)")
            }
            guard position.epoch >= 1, (0...perEpoch).contains(position.stepInEpoch),
                  position.globalStep == (position.epoch - 1) * perEpoch + position.stepInEpoch else {
                throw CheckpointError(path: dir + "/manifest.json", message: "position (epoch \(position.epoch), stepInEpoch "
                                      + "\(position.stepInEpoch), globalStep \(position.globalStep)) is not a point of this run, "
                                      + "which takes \(perEpoch) steps per epoch")
            }
            try step.loadReplicatedState(file)
            if let layer = model.classifier?.output { try restoreShard(layer, dir: dir, manifest: manifest, settings: step.settings) }
        }
        step.globalStep = manifest.position.globalStep
    }

    // MARK: - pieces

    static func makeDirectory(_ path: String) throws {
        do { try DurableFile.makeDirectories(path) } catch {
            throw CheckpointError(path: path, message: "\(error)")
        }
    }

    /// Removes the temporaries of interrupted checkpoint writes (`.tmp-step-…`).
    public static func removeStaleTemporaries(in runDirectory: String) {
        let root = runDirectory + "/checkpoints"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where name.hasPrefix(".tmp-") {
            try? FileManager.default.removeItem(atPath: root + "/" + name)
        }
    }

    /// Removes all but the newest `keep` complete checkpoints.
    static func prune(_ root: String, keep: Int) {
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("step-") }.sorted(by: >)
        for name in names.dropFirst(keep) { try? fm.removeItem(atPath: root + "/" + name) }
    }
}
