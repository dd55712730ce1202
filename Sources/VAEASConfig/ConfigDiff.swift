/// Which keys a continued run may change, and what differs between two configs
/// (issue #21: a checkpoint is resumed only by the run it belongs to).
extension TrainConfig {
    /// Keys that do not alter the trajectory: how long the run goes on, what it
    /// logs, checkpoints and evaluates, where the data lives (its content is
    /// checked separately), the stall timeout. `--resume` may change these with
    /// `--set`; any other key needs `--allow-config-change KEY`.
    public static let resumableKeys = ["train.epochs", "train.max_steps", "train.log_every", "train.checkpoint_every",
                                       "train.checkpoint_steps", "train.checkpoint_minutes", "train.keep_checkpoints",
                                       "train.stall_timeout", "train.divergence_factor", "eval.every", "eval.batch", "eval.iw_samples",
                                       "eval.au_threshold", "data.dir"]

    /// Every other key: the ones that define the trajectory (model, objective,
    /// optimizer, data selection, seed, reduction), in canonical order.
    public static var trajectoryKeys: [String] { keys.filter { !resumableKeys.contains($0) } }

    /// The trajectory keys as "key=value" lines, canonical order: the text the
    /// run identity's config hash covers. Floats are written so they parse back
    /// to the same bits.
    public var trajectoryText: String {
        Self.trajectoryKeys.map { "\($0)=\(values[$0]!)\n" }.joined()
    }

    /// One key whose value differs between two configs.
    public struct Change: Equatable, Sendable, CustomStringConvertible {
        public let key: String
        public let old: String
        public let new: String
        public var description: String { "\(key): \(old) → \(new)" }
    }

    /// The keys whose values differ from `old`, canonical order.
    public func changes(from old: TrainConfig) -> [Change] {
        Self.keys.compactMap { k in
            let a = old.values[k]!, b = values[k]!
            return a == b ? nil : Change(key: k, old: a.description, new: b.description)
        }
    }

    /// Whether `key` is a key of the table (for telling an unknown key from a refused one).
    public static func isKey(_ key: String) -> Bool { KeyTable.all.contains { $0.key == key } }

    /// Throws the table's "unknown config key" error (with its suggestions) unless `key` is a key.
    public static func checkKey(_ key: String, source: String) throws {
        _ = try descriptor(key, source: source, line: nil)
    }
}
