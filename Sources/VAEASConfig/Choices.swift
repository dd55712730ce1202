/// The configuration's enumerated choices, typed. Each is parsed once, from its
/// key in the table (`KeyTable`), whose allowed values are these cases' raw
/// values; the rest of the code switches over cases, never compares strings.
/// The CLI reuses them as `ExpressibleByArgument` options.

/// Which objective is trained (`objective.kind`).
public enum ObjectiveKind: String, Sendable, CaseIterable, Codable {
    /// The plain ELBO: no classifier.
    case vae
    /// ELBO with the mutual-information term estimated by the auxiliary classifier (paper §3.3).
    case vaeas
}

/// The classifier's V-way output layer (`objective.softmax`).
public enum SoftmaxKind: String, Sendable, CaseIterable, Codable {
    /// Every label's logit, partitioned by label rows across ranks.
    case full
    /// The hierarchical softmax (paper §3.5): one path of ⌈log₂ V⌉ binary nodes per row.
    case tree
}

/// Which Ĥ_i the mutual-information estimate Î = log V − mean_i Ĥ_i uses
/// (`objective.mi_estimator`; design doc, "Mutual information and marginal KL").
public enum MIEstimator: String, Sendable, CaseIterable, Codable {
    /// Ĥ = H(s_ω(·|z)) = −Σ_j p_j log p_j (eq. 13): needs every label's probability.
    case entropy
    /// Ĥ = CE = −log p_e: Î is then the Barber–Agakov lower bound on MI.
    case ce
    /// Ĥ = h(P_e) + P_e log(V − 1), P_e = 1 − p_e (Fano's inequality; Theorem 3.3).
    case fano

    /// Whether the estimator needs all V probabilities (the tree gives one leaf's).
    public var needsAllProbabilities: Bool { self == .entropy }
}

/// Which marginal-KL estimate MD̂ the objective weighs with β (`objective.md_estimator`; design doc,
/// "Mutual information and marginal KL").
public enum MDEstimator: String, Sendable, CaseIterable, Codable {
    /// The paper's eq. 14: q(z) = q(z|x_i) / (V · s_ω(e_i|z)), so MD̂ = mean KL − (log V − mean CE).
    /// MI + MD − KL = mean CE − mean Ĥ ≥ 0 in general, and the CE term's gradient flows into z.
    case eq14
    /// MD̂ = mean KL − Î (appendix 7.1's identity): MI + MD = KL by construction, and at α = β the
    /// objective is the ELBO (the composition this project used before issue #20).
    case klMinusMI = "kl_minus_mi"
}

/// Order of the tree's leaves (`objective.leaf_order`).
public enum LeafOrder: String, Sendable, CaseIterable, Codable {
    /// Recursive median splits along each block's top principal direction of the labels' mean images.
    case pca
    /// Label index order.
    case index
}

/// How training samples map to the classifier's labels (`objective.label_assignment`).
public enum LabelAssignmentKind: String, Sendable, CaseIterable, Codable {
    /// e_i = i mod V.
    case modulo
    /// A seeded, balanced assignment e_i = π(i) mod V.
    case random
}

/// How 0–255 pixels become the {0, 1} targets of the Bernoulli decoder (`data.binarize`).
public enum Binarization: String, Sendable, CaseIterable, Codable {
    /// pixel ≥ 128 → 1, fixed.
    case `static`
    /// Bernoulli(pixel / 255), redrawn every epoch from the counter RNG
    /// keyed by (seed, epoch, global sample index, pixel).
    case dynamic
}

/// Which `data.limit` training samples are kept (`data.subset`).
public enum SubsetKind: String, Sendable, CaseIterable, Codable {
    /// A seeded sample (`data.subset_seed`), stratified by class where the
    /// dataset has labels, kept in file order: representative of the split.
    case random
    /// The first `data.limit` samples of the file (only fair for a file in random order).
    case first
}

/// Learning-rate schedule after the warm-up (`train.lr_schedule`).
public enum LRSchedule: String, Sendable, CaseIterable, Codable {
    /// `train.lr` throughout.
    case constant
    /// Cosine decay from `train.lr` to 0 over the steps after the warm-up (Loshchilov & Hutter 2017, no restarts).
    case cosine
}

/// Hidden-layer nonlinearity (`model.activation`).
public enum Activation: String, Sendable, CaseIterable, Codable {
    case tanh
    case relu
}

/// Weight initialisation (`model.init`).
public enum Initialization: String, Sendable, CaseIterable, Codable {
    /// Glorot & Bengio (2010) uniform, W ~ U(±√(6/(in+out))), b = 0: Keras'
    /// `Dense` default. It keeps tanh activations from shrinking through the
    /// paper's seven-layer encoder/decoder stacks.
    case glorot
    /// `torch.nn.Linear`'s default: W, b ~ U(±1/√in).
    case pytorch
}
