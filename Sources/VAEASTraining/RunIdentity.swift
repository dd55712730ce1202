import VAEASConfig
import VAEASCore
import VAEASData

/// What a training-state checkpoint must share with the run that resumes it
/// (issue #21): the trajectory-defining config, the data's content and the
/// rank-independent parameter layout. Recorded in every manifest and in
/// `run.jsonl`; `--resume` refuses a checkpoint whose identity differs from
/// the run's, naming the key or file, unless the change is asked for
/// (`--allow-config-change KEY`, `--allow-data-change`).
///
/// The hashes are CRC-32s: they guard against accidents (another run's
/// checkpoints copied in, a data file replaced, a build with another layout),
/// not against someone forging a match.
public struct RunIdentity: Codable, Equatable, Sendable {
    /// One split as the run read it.
    public struct DataFingerprint: Codable, Equatable, Sendable {
        public var split: String
        /// The images file (absolute when the config's data.dir is).
        public var file: String
        /// Samples after `data.limit`/`data.subset`, in training order.
        public var samples: Int
        /// CRC-32 of the decoded pixels and then the labels, in that order: the
        /// content, whatever the file's compression or location.
        public var crc32: String
    }

    /// CRC-32 of `TrainConfig.trajectoryText` (every key but the resumable ones).
    public var config: String
    /// The training split, and the test split when the run evaluates.
    public var data: [DataFingerprint]
    /// CRC-32 of every parameter tensor's name and global shape (`layoutText`).
    public var layout: String

    public init(config: TrainConfig, spec: ModelSpec, train: Dataset, test: Dataset?) {
        self.config = Self.hex(DurableFile.crc32(Array(config.trajectoryText.utf8)))
        data = [Self.fingerprint(train)] + (test.map { [Self.fingerprint($0)] } ?? [])
        layout = Self.hex(DurableFile.crc32(Array(Self.layoutText(spec).utf8)))
    }

    public static func fingerprint(_ d: Dataset) -> DataFingerprint {
        var crc = d.images.pixels.withUnsafeBytes { DurableFile.crc32($0) }
        if let labels = d.labels?.labels {
            crc = labels.withUnsafeBytes { DurableFile.crc32($0, continuing: crc) }
        }
        return DataFingerprint(split: d.split, file: d.images.path, samples: d.count, crc32: hex(crc))
    }

    /// "name [d0, d1]" per tensor in checkpoint order, the output layer's at
    /// its global size: the same at every rank count.
    public static func layoutText(_ spec: ModelSpec) -> String {
        CheckpointMetadata(model: spec, dataset: "", binarize: .static, trainSamples: nil).expectedTensors
            .map { "\($0.name) \($0.shape)\n" }.joined()
    }

    static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 8 - s.count) + s
    }

    /// What differs between the checkpoint's identity (`self`) and the run's
    /// `current` one, beside the config (compared key by key elsewhere): one
    /// sentence per data split and for the layout. Empty when they match.
    public func dataMismatches(_ current: RunIdentity) -> [String] {
        data.compactMap { saved in
            guard let now = current.data.first(where: { $0.split == saved.split }) else { return nil }
            guard saved.samples != now.samples || saved.crc32 != now.crc32 else { return nil }
            return "the \(saved.split) data differ: the checkpoint was trained on \(saved.file) (\(saved.samples) samples, "
                + "content CRC-32 \(saved.crc32)), the run now reads \(now.file) (\(now.samples) samples, content CRC-32 \(now.crc32))"
        }
    }

    public func layoutMismatch(_ current: RunIdentity) -> String? {
        layout == current.layout ? nil
            : "the parameter layout differs (the checkpoint's CRC-32 \(layout), this build's for the run's config \(current.layout)): "
                + "written by a build that lays out the parameters otherwise"
    }
}
