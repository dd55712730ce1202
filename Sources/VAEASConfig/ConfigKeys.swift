/// The key table. Everything else (defaults, parsing, checking, YAML output,
/// typed accessors' storage) is driven by it, so a new key is one line here
/// plus, if the trainer needs it typed, one field in the section struct.
enum KeyTable {
    static let all: [KeyDescriptor] = [
        .string("data.name", "fashion-mnist", .oneOf(["binarized-mnist", "mnist", "fashion-mnist", "omniglot-small"]),
                "Dataset to train on."),
        .string("data.dir", "", .any,
                "Dataset directory; \"\" means $VAEAS_DATA_DIR or the dataset's standard location."),
        .choice("data.binarize", Binarization.dynamic,
                "Binarisation of grey-level images: fixed once (static) or resampled every epoch (dynamic)."),
        .int("data.limit", 0, min: 0, "Train on N samples of the training split (chosen by data.subset); 0 = all."),
        .choice("data.subset", SubsetKind.random,
                "Which data.limit samples: a seeded sample stratified by class where there are labels (random), or the file's first N (first)."),
        .int("data.subset_seed", 0, min: 0, max: 4_294_967_295, "Seed of data.subset=random (independent of train.seed, so seeds share one subset)."),
        .string("data.test_split", "test", .nonEmpty, "Name of the split used for evaluation."),

        .int("model.latent", 40, min: 1, max: 4096, "Dimension of the latent code z."),
        .int("model.hidden", 500, min: 1, max: 65536, "Units per hidden layer."),
        .int("model.enc_layers", 2, min: 1, max: 64, "Hidden layers of the encoder."),
        .int("model.dec_layers", 5, min: 1, max: 64, "Hidden layers of the decoder."),
        .int("model.cls_layers", 2, min: 0, max: 64, "Hidden layers of the VAE-AS classifier s_ω(e|z) (its width is model.hidden)."),
        .choice("model.activation", Activation.tanh, "Hidden-layer nonlinearity."),
        .choice("model.init", Initialization.glorot,
                "Weight initialisation: glorot (uniform, zero bias; Keras' Dense default) or pytorch (nn.Linear's U(±1/√in))."),

        .choice("objective.kind", ObjectiveKind.vae, "Plain ELBO (vae) or ELBO with the label term (vaeas)."),
        .float("objective.alpha", 1.0, min: 0, "Weight of the mutual-information term."),
        .float("objective.beta", 1.0, min: 0, "Weight of the KL term."),
        .int("objective.labels", 0, min: 0, "Number of surrogate labels; 0 = one label per training sample."),
        .choice("objective.label_assignment", LabelAssignmentKind.modulo,
                "How training samples are mapped to labels."),
        .choice("objective.mi_estimator", MIEstimator.entropy,
                "Estimator of the mutual information between z and the label."),
        .choice("objective.md_estimator", MDEstimator.eq14,
                "Estimator of the marginal KL(q(z) ‖ p(z)) that β weighs: eq14 (the paper's eq. 14, MD = mean KL − (log V − mean CE); the CE term's gradient flows into the encoder, so α = β is not the ELBO unless mi_estimator is ce) or kl_minus_mi (MD = mean KL − MI: α = β is exactly the ELBO)."),
        .choice("objective.softmax", SoftmaxKind.full, "Label softmax: dense or hierarchical."),
        .int("objective.kl_anneal_steps", 0, min: 0,
             "KL annealing: the weight β of the marginal KL rises linearly from 0 to objective.beta over this many optimizer steps (α stays); 0 = off."),
        .choice("objective.leaf_order", LeafOrder.pca,
                "Tree softmax only: leaves ordered by recursive PCA splits of the labels' mean images (pca), or by label (index)."),

        .int("train.epochs", 5, min: 1, "Passes over the training set."),
        .int("train.batch", 128, min: 1, "Global batch size, summed over ranks."),
        .float("train.lr", 0.001, min: 0, minExclusive: true, "Adam learning rate."),
        .float("train.cls_lr", 0, min: 0,
               "Adam learning rate of the classifier s_ω (hidden and output layers); 0 = train.lr. Follows the same warm-up and schedule."),
        .int("train.cls_steps", 1, min: 1, max: 64,
             "Classifier updates per optimizer step: 1 + (cls_steps − 1) classifier-only steps on the same batch, re-encoded with the updated encoder."),
        .int("train.warmup_steps", 0, min: 0, "Linear learning-rate warm-up from 0 over this many optimizer steps; 0 = off."),
        .choice("train.lr_schedule", LRSchedule.constant, "Learning rate after the warm-up."),
        .float("train.clip_grad_norm", 0, min: 0,
               "Clip the global gradient norm (every parameter, all ranks' classifier rows) to this value, as torch.nn.utils.clip_grad_norm_; 0 = off."),
        .float("train.beta1", 0.9, min: 0, max: 1, maxExclusive: true, "Adam first-moment decay."),
        .float("train.beta2", 0.999, min: 0, max: 1, maxExclusive: true, "Adam second-moment decay."),
        .float("train.eps", 1e-8, min: 0, minExclusive: true, "Adam epsilon."),
        .int("train.seed", 0, min: 0, max: 4_294_967_295, "Random seed."),
        .int("train.samples", 1, min: 1, max: 1024, "Reparameterisation samples L per data point."),
        .int("train.max_steps", 0, min: 0, "Stop after this many optimizer steps in total; 0 = no cap."),
        .int("train.log_every", 0, min: 0, "Log every N steps; 0 = no per-step log."),
        .int("train.checkpoint_every", 1, min: 0,
             "Epochs between model.safetensors (and a training-state checkpoint); 0 = only at the end."),
        .int("train.checkpoint_steps", 0, min: 0,
             "Optimizer steps between training-state checkpoints (checkpoints/step-N/, for --resume); 0 = off."),
        .float("train.checkpoint_minutes", 0, min: 0,
               "Minutes between training-state checkpoints (rank 0's clock, agreed at a step boundary); 0 = off."),
        .int("train.keep_checkpoints", 3, min: 0, "Training-state checkpoints kept (the newest); 0 = keep all."),
        .float("train.bucket_mb", 0, min: 0,
               "Gradient buckets (MiB) reduced with MPI_Iallreduce while backward runs (DDP's bucket_cap_mb); 0 = one blocking allreduce after backward."),
        .int("train.zero_stage", 0, min: 0, max: 1,
             "1 = shard the replicated parameters' Adam state over ranks (ZeRO stage 1): reduce-scatter, update a slice, allgather."),
        .float("train.divergence_factor", 100, min: 0,
               "Stop the run, without checkpointing the state, when a step's loss exceeds this many times the lowest step loss of the run so far, or an update makes the loss of its own batch do so (checked before every checkpoint); 0 = off (non-finite losses always stop it)."),
        .float("train.stall_timeout", 300, min: 0,
               "Seconds a rank may make no progress (a collective not returning, no step) before every live rank reports where it waits and for which ranks, and the job ends with exit status 124; 0 = off."),

        .int("eval.every", 1, min: 0, "Epochs between test-set evaluations; 0 = never."),
        .int("eval.batch", 500, min: 1, "Evaluation batch size."),
        .int("eval.iw_samples", 0, min: 0, max: 1_000_000,
             "Importance samples K for test NLL during training (0 = single-sample test ELBO only)."),
        .float("eval.au_threshold", 0.01, min: 0, "Active-unit threshold on Var_x(mu_d(x))."),
    ]

    static let byKey: [String: KeyDescriptor] = Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0) })

    /// Sections in first-appearance order.
    static let sections: [String] = {
        var seen: [String] = []
        for d in all where !seen.contains(d.section) { seen.append(d.section) }
        return seen
    }()

    static func keys(in section: String) -> [KeyDescriptor] { all.filter { $0.section == section } }
}

enum ValueType { case int, float, string }

enum Constraint {
    case intRange(min: Int, max: Int?)
    /// Floats are always required to be finite: a NaN or infinite hyperparameter is never intended.
    case floatRange(min: Double, minExclusive: Bool, max: Double?, maxExclusive: Bool)
    case oneOf([String])
    case nonEmpty
    case any
}

struct KeyDescriptor {
    let key: String
    let section: String
    let name: String
    let type: ValueType
    let defaultValue: ConfigValue
    let constraint: Constraint
    let doc: String

    private init(_ key: String, _ type: ValueType, _ def: ConfigValue, _ constraint: Constraint, _ doc: String) {
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        precondition(parts.count == 2, "config key \(key) must be section.key")
        self.key = key
        section = parts[0]
        name = parts[1]
        self.type = type
        defaultValue = def
        self.constraint = constraint
        self.doc = doc
    }

    static func int(_ key: String, _ def: Int, min: Int, max: Int? = nil, _ doc: String) -> KeyDescriptor {
        KeyDescriptor(key, .int, .int(def), .intRange(min: min, max: max), doc)
    }

    static func float(_ key: String, _ def: Double, min: Double, minExclusive: Bool = false,
                      max: Double? = nil, maxExclusive: Bool = false, _ doc: String) -> KeyDescriptor {
        KeyDescriptor(key, .float, .float(def),
                      .floatRange(min: min, minExclusive: minExclusive, max: max, maxExclusive: maxExclusive), doc)
    }

    static func string(_ key: String, _ def: String, _ constraint: Constraint, _ doc: String) -> KeyDescriptor {
        KeyDescriptor(key, .string, .string(def), constraint, doc)
    }

    /// A key whose value is one of `T`'s cases, written as its raw value.
    static func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ def: T, _ doc: String) -> KeyDescriptor
        where T.RawValue == String {
        KeyDescriptor(key, .string, .string(def.rawValue), .oneOf(T.allCases.map(\.rawValue)), doc)
    }

    /// What a valid value looks like, phrased to follow "expected".
    var expectation: String {
        switch constraint {
        case let .intRange(lo, hi?): return "an integer in \(lo)…\(hi)"
        case let .intRange(lo, nil): return "an integer ≥ \(lo)"
        case let .floatRange(lo, loEx, hi?, hiEx):
            return "a number in \(loEx ? "(" : "[")\(formatNumber(lo)), \(formatNumber(hi))\(hiEx ? ")" : "]")"
        case let .floatRange(lo, loEx, nil, _):
            return "a finite number \(loEx ? ">" : "≥") \(formatNumber(lo))"
        case let .oneOf(allowed): return "one of \(allowed.joined(separator: ", "))"
        case .nonEmpty: return "a non-empty string"
        case .any: return "a string"
        }
    }

    /// Checks a value already of the right type against the constraint; returns the complaint, if any.
    func violation(_ value: ConfigValue) -> String? {
        switch (constraint, value) {
        case let (.intRange(lo, hi), .int(v)):
            if v < lo || (hi.map { v > $0 } ?? false) { return "expected \(expectation), got \(v)" }
        case let (.floatRange(lo, loEx, hi, hiEx), .float(v)):
            if !v.isFinite { return "expected \(expectation), got \(v) (not finite)" }
            let belowMin = loEx ? v <= lo : v < lo
            let aboveMax = hi.map { hiEx ? v >= $0 : v > $0 } ?? false
            if belowMin || aboveMax { return "expected \(expectation), got \(formatFloat(v))" }
        case let (.oneOf(allowed), .string(s)):
            if !allowed.contains(s) { return "expected \(expectation), got '\(s)'" }
        case let (.nonEmpty, .string(s)):
            if s.isEmpty { return "expected \(expectation), got ''" }
        case (.any, .string):
            break
        default:
            return "expected \(expectation), got \(value.kindDescription) \(value.quotedForMessage)"
        }
        return nil
    }
}

/// Integral bounds print as integers in messages ("≥ 0", not "≥ 0.0").
private func formatNumber(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : formatFloat(x)
}

/// Shortest text that parses back to exactly `x`. Swift's description already
/// round-trips; we only make sure there is a '.' so that YAML 1.1 readers
/// (which need one in exponent forms like 1e-08) also see a float.
public func formatFloat(_ x: Double) -> String {
    var s = "\(x)"
    if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }), !s[..<e].contains(".") {
        s.insert(contentsOf: ".0", at: e)
    }
    return s
}
