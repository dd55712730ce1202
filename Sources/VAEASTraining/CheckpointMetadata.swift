import VAEASConfig
import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import SafeTensors

/// What `model.safetensors`' `__metadata__` says about the run, typed. Its
/// `entries` are the string map safetensors stores (the keys the README lists,
/// unchanged since format "vaeas-dist/1"); `init(entries:path:)` reads them
/// back with errors that name the key. Keys an older checkpoint lacks take
/// the config defaults.
public struct CheckpointMetadata: Sendable, Equatable, Codable {
    public static let currentFormat = "vaeas-dist/1"
    public var format: String
    public var model: ModelSpec
    /// The training data: dataset name, binarization and number of samples (labels are per sample).
    public var dataset: String
    public var binarize: Binarization
    public var trainSamples: Int?

    public init(model: ModelSpec, dataset: String, binarize: Binarization, trainSamples: Int?) {
        format = Self.currentFormat
        self.model = model; self.dataset = dataset; self.binarize = binarize; self.trainSamples = trainSamples
    }

    /// The safetensors `__metadata__` map.
    public var entries: [String: String] {
        let s = model.shape
        var m: [String: String] = [
            "format": format,
            "objective": model.objective.rawValue,
            "activation": s.activation.rawValue,
            "input_dim": "\(s.input)",
            "latent_dim": "\(s.latent)",
            "hidden": "\(s.hidden)",
            "enc_layers": "\(s.encoderLayers)",
            "dec_layers": "\(s.decoderLayers)",
            "init": model.initialization.rawValue,
            "dataset": dataset,
            "binarize": binarize.rawValue,
            "seed": "\(model.seed)",
        ]
        if let trainSamples { m["train_samples"] = "\(trainSamples)" }
        if let c = model.classifier {
            m["cls_layers"] = "\(c.layers)"
            m["labels"] = "\(c.labels)"
            m["label_assignment"] = c.labelAssignment.rawValue
            m["mi_estimator"] = c.estimator.rawValue
            m["softmax"] = c.softmax.rawValue
            m["leaf_order"] = c.leafOrder.rawValue
            if c.softmax == .tree {
                m["tree_node_order"] = "preorder; node over leaves [lo, hi) splits at lo + ceil((hi - lo) / 2); P(left) = sigmoid(w.h + b)"
            }
            m["alpha"] = "\(model.alpha)"
            m["beta"] = "\(model.beta)"
        }
        return m
    }

    /// Reads a checkpoint's `__metadata__`; `path` names the file in errors.
    public init(entries m: [String: String], path: String) throws {
        func fail(_ key: String, _ expected: String) -> CheckpointError {
            CheckpointError(path: path, message: "__metadata__ key '\(key)' missing or not \(expected)")
        }
        func int(_ key: String, default def: Int? = nil) throws -> Int {
            guard let s = m[key] else {
                if let def { return def }
                throw fail(key, "a positive integer")
            }
            guard let v = Int(s), v > 0 else { throw fail(key, "a positive integer") }
            return v
        }
        func choice<T: RawRepresentable & CaseIterable>(_ key: String, default def: T?) throws -> T where T.RawValue == String {
            guard let s = m[key] else {
                if let def { return def }
                throw fail(key, "one of " + T.allCases.map(\.rawValue).joined(separator: ", "))
            }
            guard let v = T(rawValue: s) else { throw fail(key, "one of " + T.allCases.map(\.rawValue).joined(separator: ", ")) }
            return v
        }
        func number(_ key: String, default def: Double) throws -> Double {
            guard let s = m[key] else { return def }
            guard let v = Double(s), v.isFinite, v >= 0 else { throw fail(key, "a finite number ≥ 0") }
            return v
        }
        let d = TrainConfig.defaults
        format = m["format"] ?? Self.currentFormat
        let activation: Activation = try choice("activation", default: nil)
        let shape = VAEShape(input: try int("input_dim"), latent: try int("latent_dim"), hidden: try int("hidden"),
                             encoderLayers: try int("enc_layers"), decoderLayers: try int("dec_layers"), activation: activation)
        let kind: ObjectiveKind = try choice("objective", default: .vae)
        var classifier: ClassifierSpec? = nil
        if kind == .vaeas {
            let layers: Int
            if let s = m["cls_layers"] {
                guard let v = Int(s), v >= 0 else { throw fail("cls_layers", "an integer ≥ 0") }
                layers = v
            } else {
                layers = d.model.clsLayers
            }
            classifier = ClassifierSpec(layers: layers, labels: try int("labels"),
                                        labelAssignment: try choice("label_assignment", default: d.objective.labelAssignment),
                                        estimator: try choice("mi_estimator", default: d.objective.miEstimator),
                                        softmax: try choice("softmax", default: d.objective.softmax),
                                        leafOrder: try choice("leaf_order", default: d.objective.leafOrder))
        }
        let seed: UInt32
        if let s = m["seed"] {
            guard let v = UInt32(s) else { throw fail("seed", "an integer in 0…4294967295") }
            seed = v
        } else {
            seed = 0
        }
        model = ModelSpec(shape: shape, initialization: try choice("init", default: d.model.initialization), seed: seed,
                          objective: kind, alpha: try number("alpha", default: 1), beta: try number("beta", default: 1),
                          classifier: classifier)
        dataset = m["dataset"] ?? "binarized-mnist"
        binarize = try choice("binarize", default: .static)
        trainSamples = m["train_samples"] == nil ? nil : try int("train_samples")
    }

    public init(_ file: SafeTensorsFile) throws { try self.init(entries: file.metadata, path: file.path) }
}
