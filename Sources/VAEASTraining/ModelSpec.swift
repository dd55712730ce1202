import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import VAEASConfig

/// The VAE-AS classifier's architecture and estimator, resolved (V is a
/// number, never the config's 0 = "one per sample").
public struct ClassifierSpec: Sendable, Equatable, Codable {
    /// Hidden layers (width = the VAE's hidden width).
    public var layers: Int
    /// V.
    public var labels: Int
    public var labelAssignment: LabelAssignmentKind
    public var estimator: MIEstimator
    /// Which MD̂ β weighs (eq. 14 or KL − Î).
    public var mdEstimator: MDEstimator
    public var softmax: SoftmaxKind
    public var leafOrder: LeafOrder
}

/// Everything that determines the model's function and its initial values:
/// what `VAEASModel` is built from, whether from a config (training) or from
/// a checkpoint's metadata (evaluation).
public struct ModelSpec: Sendable, Equatable, Codable {
    public var shape: VAEShape
    public var initialization: Initialization
    public var seed: UInt32
    public var objective: ObjectiveKind
    public var alpha: Double
    public var beta: Double
    /// VAE-AS only.
    public var classifier: ClassifierSpec?

    public init(shape: VAEShape, initialization: Initialization, seed: UInt32, objective: ObjectiveKind,
                alpha: Double, beta: Double, classifier: ClassifierSpec?) {
        self.shape = shape; self.initialization = initialization; self.seed = seed
        self.objective = objective; self.alpha = alpha; self.beta = beta; self.classifier = classifier
    }

    /// The spec of a training run on `trainSamples` samples of `inputDimension`
    /// pixels. More labels than samples leaves labels no sample carries: refused
    /// unless `allowUnusedLabels` (`bench` times such layers on purpose).
    public init(config: TrainConfig, inputDimension: Int, trainSamples: Int, allowUnusedLabels: Bool = false) throws {
        let m = config.model, o = config.objective
        shape = VAEShape(input: inputDimension, latent: m.latent, hidden: m.hidden, encoderLayers: m.encLayers,
                         decoderLayers: m.decLayers, activation: m.activation)
        initialization = m.initialization
        seed = UInt32(config.train.seed)
        objective = o.kind
        alpha = o.alpha
        beta = o.beta
        switch o.kind {
        case .vae:
            classifier = nil
        case .vaeas:
            let labels = o.labels > 0 ? o.labels : trainSamples
            guard labels >= 2 else {
                throw ConfigError(key: "objective.labels", source: nil, message: "VAE-AS needs at least 2 labels, got \(labels)")
            }
            guard labels <= trainSamples || allowUnusedLabels else {
                throw ConfigError(key: "objective.labels", source: nil,
                                  message: "\(labels) labels for \(trainSamples) training samples: \(labels - trainSamples) labels would "
                                      + "have no sample; expected at most N = \(trainSamples) (0 means one label per sample)")
            }
            classifier = ClassifierSpec(layers: m.clsLayers, labels: labels, labelAssignment: o.labelAssignment,
                                        estimator: o.miEstimator, mdEstimator: o.mdEstimator, softmax: o.softmax,
                                        leafOrder: o.leafOrder)
        }
    }

    /// The objective's weights: the plain ELBO for `vae`.
    public var objectiveWeights: Objective {
        guard let classifier else { return .elbo }
        return Objective(alpha: alpha, beta: beta, labels: classifier.labels, miEstimator: classifier.estimator,
                         mdEstimator: classifier.mdEstimator)
    }
}
