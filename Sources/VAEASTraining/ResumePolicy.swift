import Foundation
import VAEASConfig

/// `--resume`'s rules for the config (issue #21): a checkpoint continues only
/// the run it belongs to, and every change is asked for and recorded.
///
/// The run's record is its `config.yaml`; the checkpoint's manifest holds the
/// config it was written with. Their trajectory keys (`TrainConfig.trajectoryKeys`)
/// must agree — a difference means another run's checkpoint, or an edited
/// `config.yaml` — and `--set` may change only `TrainConfig.resumableKeys`,
/// unless `--allow-config-change KEY` names the key.
public struct ResumeRequest: Sendable {
    /// `--set key=value`, in order.
    public var overrides: [String]
    /// `--allow-config-change KEY` (repeatable): trajectory keys that may differ from the checkpoint's.
    public var allowedChanges: [String]
    /// `--allow-data-change`: continue on data whose content differs from the checkpoint's.
    public var allowDataChange: Bool
    /// Changes an earlier `--resume` of this run was allowed and recorded in
    /// `run.jsonl` ("key=value" of the new value): `config.yaml` holds them, and
    /// a later resume from an older checkpoint (a requeue before the next one)
    /// accepts them without asking again.
    public var recordedChanges: Set<String>

    public init(overrides: [String], allowedChanges: [String] = [], allowDataChange: Bool = false,
                recordedChanges: Set<String> = []) {
        self.overrides = overrides; self.allowedChanges = allowedChanges; self.allowDataChange = allowDataChange
        self.recordedChanges = recordedChanges
    }
}

public struct ResumeRefused: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum ResumePolicy {
    /// A config recorded by a run (its `config.yaml` or a manifest's), with
    /// what an older run left out filled in as it trained: a run begun before
    /// `objective.md_estimator` existed (issue #20) trained MD̂ = KL − Î.
    public static func recorded(yaml: String, source: String) throws -> (config: TrainConfig, predatesMDEstimator: Bool) {
        var config = try TrainConfig.parse(yaml: yaml, source: source)
        let old = !yaml.contains("md_estimator:")
        if old { try config.set("objective.md_estimator", choice: MDEstimator.klMinusMI) }
        return (config, old)
    }

    /// The config the resumed run continues with, and its changes from the
    /// checkpoint's (`checkpoint`): the run's own record `run` (nil when its
    /// config.yaml is gone: the checkpoint's then) with `request`'s overrides.
    /// - Throws: `ResumeRefused` naming every trajectory key on which `run`
    ///   and the checkpoint disagree and that `--allow-config-change` does not
    ///   name; `ConfigError` for an unknown or refused `--set` key.
    public static func config(checkpoint: TrainConfig, run: TrainConfig?, checkpointName: String, runFile: String,
                              request: ResumeRequest) throws -> (config: TrainConfig, changes: [TrainConfig.Change]) {
        for key in request.allowedChanges { try TrainConfig.checkKey(key, source: "--allow-config-change") }
        let allowed = Set(request.allowedChanges)
        var config = run ?? checkpoint
        let foreign = config.changes(from: checkpoint).filter {
            TrainConfig.trajectoryKeys.contains($0.key) && !allowed.contains($0.key)
                && !request.recordedChanges.contains("\($0.key)=\($0.new)")
        }
        if !foreign.isEmpty {
            throw ResumeRefused(
                "\(checkpointName) does not belong to this run: it was written with "
                + foreign.map { "\($0.key)=\($0.old)" }.joined(separator: ", ") + ", but \(runFile) has "
                + foreign.map { "\($0.key)=\($0.new)" }.joined(separator: ", ")
                + " (another run's checkpoint copied in, or config.yaml edited). Resume the run that wrote it, or, to continue "
                + "from it with \(runFile)'s values, pass " + foreign.map { "--allow-config-change \($0.key)" }.joined(separator: " "))
        }
        for o in request.overrides {
            let key = String(o[..<(o.firstIndex(of: "=") ?? o.endIndex)]).trimmingCharacters(in: .whitespaces)
            if TrainConfig.isKey(key) && !TrainConfig.resumableKeys.contains(key) && !allowed.contains(key) {
                throw ConfigError(key: key, source: "--set", message: "cannot change on --resume: it alters the trajectory "
                                  + "of the run being continued. To change it from the checkpoint on, add "
                                  + "--allow-config-change \(key); keys --resume can change freely: "
                                  + TrainConfig.resumableKeys.joined(separator: ", "))
            }
            try config.set(o)   // an unknown key: the table's error
        }
        try config.validate()
        return (config, config.changes(from: checkpoint))
    }

    /// The changes earlier resumes recorded in `run.jsonl` ("config_changes"), as "key=new value".
    public static func recordedChanges(runLog: String) -> Set<String> {
        var out = Set<String>()
        for line in runLog.split(separator: "\n") where line.contains("\"config_changes\"") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let changes = object["config_changes"] as? [String: [String]] else { continue }
            for (key, pair) in changes where pair.count == 2 { out.insert("\(key)=\(pair[1])") }
        }
        return out
    }

    /// `changes` as a JSON object for `run.jsonl`: {"key": [old, new], …}.
    public static func json(_ changes: [TrainConfig.Change]) -> String {
        "{" + changes.map { "\(JSONRecord.quote($0.key)): [\(JSONRecord.quote($0.old)), \(JSONRecord.quote($0.new))]" }
            .joined(separator: ", ") + "}"
    }
}
