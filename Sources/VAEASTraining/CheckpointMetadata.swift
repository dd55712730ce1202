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
    /// How those samples were chosen from the split (nil: the whole split, or
    /// a checkpoint older than `data.subset`; see `trainedOnSubset`).
    public var trainSubset: TrainingSubset?

    /// The samples trained on: `trainSubset`, or for a checkpoint written
    /// before `data.subset` existed, the first `trainSamples` (what
    /// `data.limit` kept then). nil: the whole split.
    public var trainedOnSubset: TrainingSubset? {
        trainSubset ?? trainSamples.map { TrainingSubset(limit: $0, kind: .first, seed: 0) }
    }
    /// When the tensors were written: the epoch (the last one completed, or in
    /// progress at a `train.max_steps` stop) and the optimizer step.
    public var epoch: Int?
    public var step: Int?

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
        if let t = trainSubset, t.limit > 0 {
            m["train_subset"] = t.kind.rawValue
            m["train_subset_seed"] = "\(t.seed)"
        }
        if let epoch { m["epoch"] = "\(epoch)" }
        if let step { m["step"] = "\(step)" }
        if let c = model.classifier {
            m["cls_layers"] = "\(c.layers)"
            m["labels"] = "\(c.labels)"
            m["label_assignment"] = c.labelAssignment.rawValue
            m["mi_estimator"] = c.estimator.rawValue
            m["md_estimator"] = c.mdEstimator.rawValue
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
                                        // Checkpoints written before eq. 14 (issue #20) were trained with KL − Î.
                                        mdEstimator: try choice("md_estimator", default: MDEstimator.klMinusMI),
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
        dataset = Self.datasetName(m)
        binarize = try choice("binarize", default: .static)
        trainSamples = m["train_samples"] == nil ? nil : try int("train_samples")
        if let n = trainSamples, m["train_subset"] != nil {
            guard let seed = m["train_subset_seed"].flatMap(UInt32.init) else {
                throw fail("train_subset_seed", "an integer in 0…4294967295")
            }
            trainSubset = TrainingSubset(limit: n, kind: try choice("train_subset", default: .random), seed: Int(seed))
        }
        epoch = m["epoch"] == nil ? nil : try int("epoch")
        step = m["step"].map { Int($0) } ?? nil
    }

    /// Reads a checkpoint's `__metadata__` and checks it against the file's
    /// tensors (`validate(against:)`), so nothing is ever sized from a number
    /// the tensors contradict.
    public init(_ file: SafeTensorsFile) throws {
        try self.init(entries: file.metadata, path: file.path)
        try validate(against: file)
    }
}

// MARK: - Metadata against tensors

extension CheckpointMetadata {
    /// One tensor the metadata implies: its name and shape, each dimension with
    /// the `__metadata__` key it comes from (for messages).
    public struct ExpectedTensor: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        /// Per dimension, e.g. "hidden", "input_dim", "labels − 1".
        public let symbols: [String]
    }

    /// Every tensor of the model the metadata describes, in checkpoint order:
    /// encoder, decoder, classifier hidden layers (`ParameterTable`), then the
    /// classifier's output layer (`classifier.out.*` [labels, h] for the full
    /// softmax, `classifier.tree.*` [labels − 1, h] for the tree). Cheap: it
    /// lists shapes, allocates nothing of their size.
    public var expectedTensors: [ExpectedTensor] {
        let s = model.shape
        let table = ParameterTable.vae(s)
            + ParameterTable.classifierHidden(latent: s.latent, width: s.hidden, layers: model.classifier?.layers ?? 0)
        var out: [ExpectedTensor] = []
        for e in table.entries {
            let (outSymbol, inSymbol) = Self.symbols(layer: e.name, decoderLayers: s.decoderLayers)
            out.append(ExpectedTensor(name: e.name + ".weight", shape: [e.outFeatures, e.inFeatures],
                                      symbols: [outSymbol, inSymbol]))
            out.append(ExpectedTensor(name: e.name + ".bias", shape: [e.outFeatures], symbols: [outSymbol]))
        }
        if let c = model.classifier {
            let width = c.layers > 0 ? s.hidden : s.latent
            let widthSymbol = c.layers > 0 ? "hidden" : "latent_dim"
            let (prefix, rows, rowSymbol) = c.softmax == .tree
                ? ("classifier.tree", c.labels - 1, "labels − 1") : ("classifier.out", c.labels, "labels")
            out.append(ExpectedTensor(name: prefix + ".weight", shape: [rows, width], symbols: [rowSymbol, widthSymbol]))
            out.append(ExpectedTensor(name: prefix + ".bias", shape: [rows], symbols: [rowSymbol]))
        }
        return out
    }

    /// The metadata keys behind a `Linear`'s out and in features (as `ParameterTable` lays them out).
    private static func symbols(layer: String, decoderLayers: Int) -> (out: String, in: String) {
        switch layer {
        case "encoder.layers.0": return ("hidden", "input_dim")
        case "encoder.mu", "encoder.logvar": return ("latent_dim", "hidden")
        case "decoder.layers.0", "classifier.layers.0": return ("hidden", "latent_dim")
        case "decoder.out": return ("input_dim", decoderLayers == 0 ? "latent_dim" : "hidden")
        default: return ("hidden", "hidden")  // encoder, decoder and classifier layers k ≥ 1
        }
    }

    /// Checks the metadata against the tensors in `file` before anything is
    /// allocated from it: the layer counts (`enc_layers`, `dec_layers`,
    /// `cls_layers`) against the layers present, then every tensor the
    /// metadata implies — present, with the implied shape (e.g.
    /// `encoder.layers.0.weight` [hidden, input_dim], `classifier.out.weight`
    /// [labels, h] or `classifier.tree.weight` [labels − 1, h]) — and no
    /// `encoder.*`, `decoder.*` or `classifier.*` tensor it does not imply.
    /// Since every size then matches a tensor stored in the file, a damaged
    /// `hidden` or `labels` can no longer ask for terabytes.
    /// - Throws: `CheckpointError` naming the file, the key and its value, the
    ///   tensor, the shape found and the shape expected.
    public func validate(against file: SafeTensorsFile) throws {
        func fail(_ message: String) -> CheckpointError { CheckpointError(path: file.path, message: message) }
        let m = entries
        func keyed(_ key: String) -> String { "\(key)=\(m[key] ?? "?")" }

        if let c = model.classifier, c.labels < 2 {
            throw fail("__metadata__ says labels=\(c.labels); a VAE-AS classifier needs at least 2 labels")
        }
        // Layer counts first: they decide how many tensors are expected at all.
        var stacks = [("encoder.layers.", "enc_layers", model.shape.encoderLayers),
                      ("decoder.layers.", "dec_layers", model.shape.decoderLayers)]
        if let c = model.classifier { stacks.append(("classifier.layers.", "cls_layers", c.layers)) }
        for (prefix, key, declared) in stacks {
            var present = Set<Int>()
            for name in file.names where name.hasPrefix(prefix) {
                let rest = name.dropFirst(prefix.count)
                if let dot = rest.firstIndex(of: "."), let k = Int(rest[..<dot]), k >= 0 { present.insert(k) }
            }
            let found = present.max().map { $0 + 1 } ?? 0
            guard found == declared else {
                let has = found == 0 ? "no \(prefix)* tensors"
                    : found == 1 ? "1 layer (\(prefix)0)" : "\(found) layers (\(prefix)0 … \(prefix)\(found - 1))"
                throw fail("__metadata__ says \(key)=\(declared), but the file has \(has); the metadata does not "
                    + "describe this file's tensors")
            }
        }

        let expected = expectedTensors
        for t in expected {
            let describe = "[\(t.symbols.joined(separator: ", "))] = \(t.shape)"
            guard file.names.contains(t.name) else {
                throw fail("__metadata__ (\(keyed("objective"))\(model.classifier.map { _ in ", " + keyed("softmax") } ?? "")) "
                    + "implies a tensor '\(t.name)' \(describe), but the file has no such tensor; the metadata "
                    + "does not describe this file's tensors")
            }
            let found = try file.shape(of: t.name)
            guard found != t.shape else { continue }
            // Name the keys whose dimensions disagree (all of them if the rank differs).
            var culprits: [String] = []
            for (i, symbol) in t.symbols.enumerated() where found.count != t.shape.count || found[i] != t.shape[i] {
                let key = symbol == "labels − 1" ? "labels" : symbol
                if !culprits.contains(keyed(key)) { culprits.append(keyed(key)) }
            }
            throw fail("__metadata__ says \(culprits.joined(separator: ", ")), but tensor '\(t.name)' has shape "
                + "\(found); expected \(describe). The metadata does not describe this file's tensors")
        }

        let names = Set(expected.map(\.name))
        if let stray = file.names.first(where: { n in
            ["encoder.", "decoder.", "classifier."].contains(where: n.hasPrefix) && !names.contains(n)
        }) {
            var what = [keyed("objective")]
            if model.classifier != nil { what.append(keyed("softmax")) }
            throw fail("tensor '\(stray)' is not part of the model __metadata__ describes "
                + "(\(what.joined(separator: ", "))); the metadata does not describe this file's tensors")
        }
    }
}

extension CheckpointMetadata {
    /// The dataset a checkpoint's run trained on: its `dataset` entry, or
    /// `binarized-mnist` for checkpoints written before the entry existed.
    public static func datasetName(_ metadata: [String: String]) -> String {
        metadata["dataset"] ?? "binarized-mnist"
    }
}
