import SafeTensors

/// Model checkpoints as safetensors, float32, in `torch.nn.Linear` layout
/// (weight `[out, in]`, bias `[out]`), with the architecture in `__metadata__`
/// so that a loader needs nothing else:
///
///     import safetensors.torch as st
///     sd = st.load_file("model.safetensors")   # encoder.layers.0.weight, …
public enum Checkpoint {
    public static let format = "vaeas-dist/1"

    public static func metadata(_ shape: VAEShape, objective: String) -> [String: String] {
        [
            "format": format,
            "objective": objective,
            "activation": shape.activation.rawValue,
            "input_dim": "\(shape.input)",
            "latent_dim": "\(shape.latent)",
            "hidden": "\(shape.hidden)",
            "enc_layers": "\(shape.encoderLayers)",
            "dec_layers": "\(shape.decoderLayers)",
        ]
    }

    /// Every tensor of `store`, named and shaped as its slots say.
    public static func writer(for store: ParameterStore, metadata: [String: String]) throws -> SafeTensorsWriter {
        var w = SafeTensorsWriter()
        w.metadata = metadata
        for slot in store.slots {
            try w.add(slot.name, shape: slot.shape,
                      data: UnsafeBufferPointer(start: store.values + slot.offset, count: slot.count))
        }
        return w
    }

    /// Writes atomically: a crash mid-write leaves the previous checkpoint.
    public static func save(_ vae: VAE, objective: String, to path: String) throws {
        try writer(for: vae.store, metadata: metadata(vae.shape, objective: objective)).write(to: path)
    }

    /// The architecture a checkpoint declares.
    public static func shape(of file: SafeTensorsFile) throws -> VAEShape {
        func int(_ key: String) throws -> Int {
            guard let s = file.metadata[key], let v = Int(s), v > 0 else {
                throw CheckpointError(path: file.path, message: "__metadata__ key '\(key)' missing or not a positive integer")
            }
            return v
        }
        guard let a = file.metadata["activation"], let act = Activation(rawValue: a) else {
            throw CheckpointError(path: file.path, message: "__metadata__ key 'activation' missing or not one of tanh, relu")
        }
        return VAEShape(input: try int("input_dim"), latent: try int("latent_dim"), hidden: try int("hidden"),
                        encoderLayers: try int("enc_layers"), decoderLayers: try int("dec_layers"), activation: act)
    }

    /// A VAE with the checkpoint's architecture and parameters, with buffers
    /// for `capacity` data points × `samples` draws.
    public static func vae(from file: SafeTensorsFile, capacity: Int, samples: Int = 1) throws -> VAE {
        let vae = VAE(shape: try shape(of: file), capacity: capacity, samples: samples)
        try load(file, into: vae.store)
        return vae
    }

    /// Loads parameters into `store`, checking every name and shape.
    public static func load(_ file: SafeTensorsFile, into store: ParameterStore) throws {
        for slot in store.slots {
            guard file.names.contains(slot.name) else {
                throw CheckpointError(path: file.path, message: "missing tensor '\(slot.name)'")
            }
            let shape = try file.shape(of: slot.name)
            guard shape == slot.shape else {
                throw CheckpointError(path: file.path, message: "tensor '\(slot.name)' has shape \(shape), expected \(slot.shape)")
            }
            let values = try file.floats(slot.name)
            values.withUnsafeBufferPointer { (store.values + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
        }
    }
}

public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

import VAEASConfig
import VAEASData

extension Checkpoint {
    /// A trainer set up as the checkpoint's run was (architecture, objective,
    /// labels, seed; from `__metadata__`) over `train`, with every tensor
    /// loaded, each rank taking its own rows of the partitioned layer. For
    /// measuring the classifier's MI, MD and SC of a finished run. `train`
    /// must be the training set the labels were assigned over.
    public static func trainer(for file: SafeTensorsFile, train: Dataset, comm: Communicator, batch: Int) throws -> Trainer {
        let m = file.metadata
        if let n = m["train_samples"].flatMap(Int.init), n != train.count {
            throw CheckpointError(path: file.path, message: "was trained on \(n) samples, the data given has \(train.count); labels are per training sample")
        }
        var c = TrainConfig.defaults
        let shape = try Checkpoint.shape(of: file)
        var sets = ["model.latent=\(shape.latent)", "model.hidden=\(shape.hidden)", "model.enc_layers=\(shape.encoderLayers)",
                    "model.dec_layers=\(shape.decoderLayers)", "model.activation=\(shape.activation.rawValue)",
                    "train.batch=\(batch)", "eval.every=0"]
        let optional = ["init": "model.init", "binarize": "data.binarize", "seed": "train.seed", "objective": "objective.kind",
                        "cls_layers": "model.cls_layers", "labels": "objective.labels", "label_assignment": "objective.label_assignment",
                        "mi_estimator": "objective.mi_estimator", "softmax": "objective.softmax", "leaf_order": "objective.leaf_order",
                        "alpha": "objective.alpha", "beta": "objective.beta"]
        for (k, key) in optional { if let v = m[k] { sets.append("\(key)=\(v)") } }
        do { for s in sets { try c.set(s) } } catch {
            throw CheckpointError(path: file.path, message: "__metadata__ does not describe a valid run: \(error)")
        }
        let t = try Trainer(config: c, train: train, test: nil, comm: comm, output: nil)
        try Checkpoint.load(file, into: t.vae.store)
        try t.classifier?.softmax.load(from: file)
        return t
    }
}
