import Foundation

/// A single configuration value, typed as its key declares.
public enum ConfigValue: Equatable, Sendable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case string(String)

    /// The value as it would be written after `--set key=`; floats round-trip exactly.
    public var description: String {
        switch self {
        case let .int(v): return String(v)
        case let .float(v): return formatFloat(v)
        case let .string(s): return s
        }
    }

    var kindDescription: String {
        switch self {
        case .int: return "the integer"
        case .float: return "the number"
        case .string: return "the string"
        }
    }

    var quotedForMessage: String {
        if case let .string(s) = self { return "'\(s)'" }
        return description
    }
}

/// Dataset selection and preprocessing.
public struct DataConfig: Equatable, Sendable {
    public let name: String
    /// "" means: resolve from $VAEAS_DATA_DIR or the dataset's standard location.
    public let dir: String
    public let binarize: Binarization
    /// 0 = all training samples.
    public let limit: Int
    public let testSplit: String
    /// Which `limit` samples, and the seed of the random subset.
    public let subset: SubsetKind
    public let subsetSeed: Int

    public init(name: String, dir: String, binarize: Binarization, limit: Int, testSplit: String,
                subset: SubsetKind = .random, subsetSeed: Int = 0) {
        self.name = name; self.dir = dir; self.binarize = binarize; self.limit = limit; self.testSplit = testSplit
        self.subset = subset; self.subsetSeed = subsetSeed
    }
}

/// Network shapes.
public struct ModelConfig: Equatable, Sendable {
    public let latent: Int
    public let hidden: Int
    public let encLayers: Int
    public let decLayers: Int
    public let clsLayers: Int
    public let activation: Activation
    public let initialization: Initialization

    public init(latent: Int, hidden: Int, encLayers: Int, decLayers: Int, clsLayers: Int, activation: Activation,
                initialization: Initialization) {
        self.latent = latent; self.hidden = hidden; self.encLayers = encLayers; self.decLayers = decLayers; self.clsLayers = clsLayers; self.activation = activation; self.initialization = initialization
    }
}

/// The training objective.
public struct ObjectiveConfig: Equatable, Sendable {
    public let kind: ObjectiveKind
    public let alpha: Double
    public let beta: Double
    /// 0 = one label per training sample.
    public let labels: Int
    public let labelAssignment: LabelAssignmentKind
    public let miEstimator: MIEstimator
    public let mdEstimator: MDEstimator
    public let softmax: SoftmaxKind
    /// Tree only.
    public let leafOrder: LeafOrder
    /// Optimizer steps over which β rises linearly from 0; 0 = off.
    public let klAnnealSteps: Int

    public init(kind: ObjectiveKind, alpha: Double, beta: Double, labels: Int, labelAssignment: LabelAssignmentKind,
                miEstimator: MIEstimator, softmax: SoftmaxKind, leafOrder: LeafOrder, klAnnealSteps: Int = 0,
                mdEstimator: MDEstimator = .eq14) {
        self.kind = kind; self.alpha = alpha; self.beta = beta; self.labels = labels; self.labelAssignment = labelAssignment; self.miEstimator = miEstimator; self.softmax = softmax
        self.leafOrder = leafOrder; self.klAnnealSteps = klAnnealSteps; self.mdEstimator = mdEstimator
    }
}

/// Optimiser and loop control.
public struct TrainingConfig: Equatable, Sendable {
    public let epochs: Int
    /// Global batch, summed over ranks.
    public let batch: Int
    public let lr: Double
    public let beta1: Double
    public let beta2: Double
    public let eps: Double
    /// 0 ... 2^32-1.
    public let seed: Int
    public let samples: Int
    /// 0 = no cap.
    public let maxSteps: Int
    /// 0 = no per-step log.
    public let logEvery: Int
    /// 0 = checkpoint only at the end.
    public let checkpointEvery: Int
    /// Training-state cadence: steps and minutes (0 = off), and how many to keep (0 = all).
    public let checkpointSteps: Int
    public let checkpointMinutes: Double
    public let keepCheckpoints: Int
    /// The classifier's learning rate (0 = `lr`) and its updates per step.
    public let clsLR: Double
    public let clsSteps: Int
    /// Learning-rate warm-up steps (0 = off) and the schedule after it.
    public let warmupSteps: Int
    public let lrSchedule: LRSchedule
    /// Global gradient-norm clip (0 = off).
    public let clipGradNorm: Double
    /// Overlapped bucketed gradient reduction: bucket size in MiB (0 = one blocking allreduce).
    public let bucketMB: Double
    /// 1 = ZeRO stage 1 (optimizer state sharded over ranks).
    public let zeroStage: Int
    /// Seconds without progress before the stall watchdog ends the job (0 = off).
    public let stallTimeout: Double
    /// `train.divergence_factor`: 0 = off.
    public let divergenceFactor: Double

    public init(epochs: Int, batch: Int, lr: Double, beta1: Double, beta2: Double, eps: Double, seed: Int, samples: Int,
                maxSteps: Int, logEvery: Int, checkpointEvery: Int, checkpointSteps: Int = 0, checkpointMinutes: Double = 0,
                keepCheckpoints: Int = 3, clsLR: Double = 0, clsSteps: Int = 1, warmupSteps: Int = 0,
                lrSchedule: LRSchedule = .constant, clipGradNorm: Double = 0, bucketMB: Double = 0, zeroStage: Int = 0,
                stallTimeout: Double = 300, divergenceFactor: Double = 100) {
        self.stallTimeout = stallTimeout; self.divergenceFactor = divergenceFactor
        self.clsLR = clsLR; self.clsSteps = clsSteps; self.warmupSteps = warmupSteps; self.lrSchedule = lrSchedule
        self.clipGradNorm = clipGradNorm
        self.bucketMB = bucketMB; self.zeroStage = zeroStage
        self.epochs = epochs; self.batch = batch; self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.seed = seed; self.samples = samples; self.maxSteps = maxSteps; self.logEvery = logEvery
        self.checkpointEvery = checkpointEvery; self.checkpointSteps = checkpointSteps
        self.checkpointMinutes = checkpointMinutes; self.keepCheckpoints = keepCheckpoints
    }
}

/// Test-set evaluation.
public struct EvalConfig: Equatable, Sendable {
    /// 0 = never.
    public let every: Int
    public let batch: Int
    /// 0 = no importance-weighted NLL during training.
    public let iwSamples: Int
    public let auThreshold: Double

    public init(every: Int, batch: Int, iwSamples: Int, auThreshold: Double) {
        self.every = every; self.batch = batch; self.iwSamples = iwSamples; self.auThreshold = auThreshold
    }
}

/// The resolved training configuration: defaults, overlaid by a YAML file,
/// overlaid by `--set` overrides. Every stored value has its key's type and
/// satisfies its key's constraint; cross-key rules are checked by `validate()`.
public struct TrainConfig: Equatable, Sendable {
    var values: [String: ConfigValue]

    init(values: [String: ConfigValue]) { self.values = values }

    /// The embedded default (every key at its default) as YAML with a comment
    /// per key; parsing it gives `TrainConfig.defaults`.
    public static let embeddedDefaultYAML: String = defaults.render(
        header: "vaeas-dist training configuration: defaults. Any key may be left out.", comments: true)

    /// Every key at its default value.
    public static var defaults: TrainConfig {
        TrainConfig(values: Dictionary(uniqueKeysWithValues: KeyTable.all.map { ($0.key, $0.defaultValue) }))
    }

    /// All keys "section.key" in canonical order.
    public static var keys: [String] { KeyTable.all.map(\.key) }

    /// Parses YAML text over the defaults. `source` names the file in errors.
    /// Does not run the cross-key checks: overrides may still fix them; call `validate()`.
    public static func parse(yaml: String, source: String) throws -> TrainConfig {
        var config = TrainConfig.defaults
        try config.merge(yaml: yaml, source: source)
        return config
    }

    /// Loads a file over the defaults; nil loads the embedded default. An empty
    /// file (or /dev/null), like an empty YAML document, means every default.
    public static func load(path: String?) throws -> TrainConfig {
        guard let path else { return try parse(yaml: embeddedDefaultYAML, source: "<embedded default>") }
        let bytes = try ConfigFile.contents(of: path)
        guard let text = String(data: Data(bytes), encoding: .utf8) else {
            throw ConfigError(key: nil, source: path, message: "config file is not valid UTF-8")
        }
        return try parse(yaml: text, source: path)
    }

    /// Applies one "section.key=value" override; the value is parsed as the key's type.
    /// Everything after the first '=' is the value, so string values may contain '='.
    public mutating func set(_ assignment: String) throws {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw ConfigError(key: nil, source: "--set",
                              message: "--set expects section.key=value, got '\(assignment)' (no '=')",
                              selfContained: true)
        }
        let key = assignment[..<eq].trimmingCharacters(in: .whitespaces)
        let text = String(assignment[assignment.index(after: eq)...])
        guard !key.isEmpty else {
            throw ConfigError(key: nil, source: "--set",
                              message: "--set expects section.key=value, got '\(assignment)' (empty key)",
                              selfContained: true)
        }
        let descriptor = try TrainConfig.descriptor(key, source: "--set", line: nil)
        values[key] = try descriptor.parse(RawScalar(text: text, origin: .commandLine), source: "--set", line: nil)
    }

    /// Sets a typed value; an `.int` is accepted for a float key. Checks type and range.
    public mutating func set(_ key: String, to value: ConfigValue) throws {
        let descriptor = try TrainConfig.descriptor(key, source: nil, line: nil)
        var value = value
        if descriptor.type == .float, case let .int(i) = value { value = .float(Double(i)) }
        if let problem = descriptor.violation(value) {
            throw ConfigError(key: key, source: nil, message: problem)
        }
        values[key] = value
    }

    /// Sets a choice key to one of its cases.
    public mutating func set<T: RawRepresentable>(_ key: String, choice: T) throws where T.RawValue == String {
        try set(key, to: .string(choice.rawValue))
    }

    /// The value of a "section.key".
    public func value(_ key: String) throws -> ConfigValue {
        _ = try TrainConfig.descriptor(key, source: nil, line: nil)
        return values[key]!
    }

    /// Cross-key checks, run once all overrides are applied.
    public func validate() throws {
        try Self.checkZeroCompatible(train)
        let f = train.divergenceFactor
        if f > 0 && f <= 1 {
            throw ConfigError(key: "train.divergence_factor", source: nil,
                              message: "expected 0 (off) or a factor > 1, got \(formatFloat(f)): a factor ≤ 1 would stop a healthy run at its first step")
        }
        let o = objective
        // Only the vaeas objective uses the label softmax; for a plain VAE these keys are inert.
        if o.kind == .vaeas && o.softmax == .tree && o.miEstimator.needsAllProbabilities {
            throw ConfigError(
                key: "objective.softmax", source: nil,
                message: "objective.softmax=tree cannot be combined with objective.mi_estimator=entropy: "
                    + "the tree softmax does not give the label entropy; use objective.mi_estimator=ce or fano, "
                    + "or objective.softmax=full",
                selfContained: true)
        }
    }

    /// ZeRO stage 1 shards the replicated parameters' Adam state by position; the classifier-only steps
    /// (`train.cls_steps` > 1) update the classifier's group outside that scheme, so the two are refused together.
    static func checkZeroCompatible(_ t: TrainingConfig) throws {
        if t.zeroStage == 1 && t.clsSteps > 1 {
            throw ConfigError(key: "train.cls_steps", source: nil,
                              message: "train.cls_steps > 1 is not supported with train.zero_stage=1 (the classifier-only "
                                  + "steps update the classifier's hidden layers outside the ZeRO slices); use zero_stage 0",
                              selfContained: true)
        }
    }

    /// Settings that are valid but known to go wrong, each a sentence for the
    /// run's header (stderr): train prints them and goes on.
    public var warnings: [String] {
        let o = objective
        var w: [String] = []
        // Î = log V − mean CE: with α > β the encoder's term (α − β)·Î rewards a
        // large classifier CE, which has no upper bound (measured: such runs collapse).
        if o.kind == .vaeas && o.miEstimator == .ce && o.alpha > o.beta {
            w.append("objective.mi_estimator=ce with objective.alpha (\(o.alpha)) > objective.beta (\(o.beta)): "
                     + "the encoder is rewarded for a large classifier cross-entropy, which is unbounded, and such runs "
                     + "collapse; entropy (full softmax) and fano are bounded by log V")
        }
        return w
    }

    /// The resolved config as YAML: every key, canonical order, floats written
    /// so that `parse` gives back the same bits.
    public func yaml() -> String {
        render(header: "vaeas-dist resolved training configuration", comments: false)
    }

    public var data: DataConfig {
        DataConfig(name: str("data.name"), dir: str("data.dir"), binarize: choice("data.binarize"),
                   limit: int("data.limit"), testSplit: str("data.test_split"), subset: choice("data.subset"),
                   subsetSeed: int("data.subset_seed"))
    }

    public var model: ModelConfig {
        ModelConfig(latent: int("model.latent"), hidden: int("model.hidden"), encLayers: int("model.enc_layers"),
                    decLayers: int("model.dec_layers"), clsLayers: int("model.cls_layers"),
                    activation: choice("model.activation"), initialization: choice("model.init"))
    }

    public var objective: ObjectiveConfig {
        ObjectiveConfig(kind: choice("objective.kind"), alpha: float("objective.alpha"), beta: float("objective.beta"),
                        labels: int("objective.labels"), labelAssignment: choice("objective.label_assignment"),
                        miEstimator: choice("objective.mi_estimator"), softmax: choice("objective.softmax"),
                        leafOrder: choice("objective.leaf_order"), klAnnealSteps: int("objective.kl_anneal_steps"),
                        mdEstimator: choice("objective.md_estimator"))
    }

    public var train: TrainingConfig {
        TrainingConfig(epochs: int("train.epochs"), batch: int("train.batch"), lr: float("train.lr"),
                       beta1: float("train.beta1"), beta2: float("train.beta2"), eps: float("train.eps"),
                       seed: int("train.seed"), samples: int("train.samples"), maxSteps: int("train.max_steps"),
                       logEvery: int("train.log_every"), checkpointEvery: int("train.checkpoint_every"),
                       checkpointSteps: int("train.checkpoint_steps"), checkpointMinutes: float("train.checkpoint_minutes"),
                       keepCheckpoints: int("train.keep_checkpoints"), clsLR: float("train.cls_lr"),
                       clsSteps: int("train.cls_steps"), warmupSteps: int("train.warmup_steps"),
                       lrSchedule: choice("train.lr_schedule"), clipGradNorm: float("train.clip_grad_norm"),
                       bucketMB: float("train.bucket_mb"), zeroStage: int("train.zero_stage"),
                       stallTimeout: float("train.stall_timeout"), divergenceFactor: float("train.divergence_factor"))
    }

    public var eval: EvalConfig {
        EvalConfig(every: int("eval.every"), batch: int("eval.batch"), iwSamples: int("eval.iw_samples"),
                   auThreshold: float("eval.au_threshold"))
    }

    // The stored values always have the table's type, so these cannot fail for table keys.
    private func int(_ key: String) -> Int {
        guard case let .int(v)? = values[key] else { preconditionFailure("\(key) is not an int key") }
        return v
    }

    private func float(_ key: String) -> Double {
        guard case let .float(v)? = values[key] else { preconditionFailure("\(key) is not a float key") }
        return v
    }

    /// A choice key: its stored string is one of `T`'s raw values (the table's constraint says so).
    private func choice<T: RawRepresentable>(_ key: String) -> T where T.RawValue == String {
        guard let v = T(rawValue: str(key)) else { preconditionFailure("\(key) holds a value outside \(T.self)") }
        return v
    }

    private func str(_ key: String) -> String {
        guard case let .string(v)? = values[key] else { preconditionFailure("\(key) is not a string key") }
        return v
    }
}
