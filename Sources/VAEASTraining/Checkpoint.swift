import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import SafeTensors
import VAEASData

/// Model checkpoints as safetensors, float32, in `torch.nn.Linear` layout
/// (weight `[out, in]`, bias `[out]`), with the architecture in `__metadata__`
/// so that a loader needs nothing else:
///
///     import safetensors.torch as st
///     sd = st.load_file("model.safetensors")   # encoder.layers.0.weight, …
public enum Checkpoint {
    public static let format = CheckpointMetadata.currentFormat

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

    /// The architecture a checkpoint declares.
    public static func shape(of file: SafeTensorsFile) throws -> VAEShape { try CheckpointMetadata(file).model.shape }

    /// A VAE with the checkpoint's architecture and parameters, with buffers
    /// for `capacity` data points × `samples` draws.
    public static func vae(from file: SafeTensorsFile, capacity: Int, samples: Int = 1) throws -> VAE {
        let shape = try shape(of: file)
        let store = ParameterStore(ParameterTable.vae(shape))
        try load(file, into: store)
        return VAE(shape: shape, capacity: capacity, samples: samples, store: store)
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

extension Checkpoint {
    /// The model of a checkpoint's run (architecture, objective, labels and
    /// seed from `__metadata__`) over `train`, with every tensor loaded (each
    /// rank its own rows of the partitioned layer), wrapped in a step with
    /// batch `batch`: for measuring the classifier's MI, MD and SC of a
    /// finished run (`trainingSetSummary`). `train` must be the training set
    /// the labels were assigned over.
    public static func step(for file: SafeTensorsFile, train: Dataset, comm: Communicator, batch: Int) throws -> DataParallelStep {
        let meta = try CheckpointMetadata(file)
        if let n = meta.trainSamples, n != train.count {
            throw CheckpointError(path: file.path, message: "was trained on \(n) samples, the data given has \(train.count); labels are per training sample")
        }
        guard train.dimension == meta.model.shape.input else {
            throw CheckpointError(path: file.path, message: "input_dim \(meta.model.shape.input) does not match the data's \(train.dimension) pixels")
        }
        let model = try VAEASModel(spec: meta.model, samples: 1, batch: batch, localCapacity: 0, trainSet: train,
                                   comm: TimedCommunicator(comm))
        try model.load(file)
        let feed = DataFeed(dataset: train, binarization: meta.binarize, seed: meta.model.seed)
        return DataParallelStep(model: model, feed: feed, settings: OptimizerSettings(lr: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8))
    }
}
