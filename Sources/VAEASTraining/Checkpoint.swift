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

    /// The architecture a checkpoint declares (checked against its tensors' shapes).
    public static func shape(of file: SafeTensorsFile) throws -> VAEShape { try CheckpointMetadata(file).model.shape }

    /// The metadata of a checkpoint that is safe to build a model from: every
    /// size it declares matches the tensors in the file
    /// (`CheckpointMetadata.validate(against:)`), and every tensor of the model
    /// is finite. Runs before anything of the declared sizes is allocated.
    /// - Throws: `CheckpointError` naming the file, and the key or tensor at fault.
    public static func verified(_ file: SafeTensorsFile) throws -> CheckpointMetadata {
        let meta = try CheckpointMetadata(file)
        for t in meta.expectedTensors {
            guard let bad = try file.nonFinite(t.name) else { continue }
            let value = bad.firstValue.isNaN ? "NaN" : bad.firstValue > 0 ? "inf" : "-inf"
            throw CheckpointError(path: file.path, message: "tensor '\(t.name)' holds \(bad.count) non-finite "
                + "value\(bad.count == 1 ? "" : "s") (first: \(value) at flat index \(bad.firstIndex) of shape "
                + "\(t.shape)); the checkpoint is damaged (or from a diverged run) and cannot be used")
        }
        return meta
    }

    /// A VAE with the checkpoint's architecture and parameters, with buffers
    /// for `capacity` data points × `samples` draws. The checkpoint is
    /// `verified` first (metadata against tensors, every value finite).
    public static func vae(from file: SafeTensorsFile, capacity: Int, samples: Int = 1) throws -> VAE {
        let shape = try verified(file).model.shape
        let store = ParameterStore(ParameterTable.vae(shape))
        try load(file, into: store)
        return VAE(shape: shape, capacity: capacity, samples: samples, store: store)
    }

    /// Loads parameters into `store`, checking every name and shape.
    public static func load(_ file: SafeTensorsFile, into store: ParameterStore) throws {
        for slot in store.slots {
            let values = try file.checkpointFloats(slot.name, shape: slot.shape)
            values.withUnsafeBufferPointer { (store.values + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
        }
    }
}

extension Checkpoint {
    /// The model of a checkpoint's run (architecture, objective, labels and
    /// seed from `__metadata__`) over `train`, with every tensor loaded (each
    /// rank its own rows of the partitioned layer), in a forward pass over
    /// batches of `batch` (no optimizer): for measuring the classifier's MI,
    /// MD and SC of a finished run (`trainingSetSummary`). `train` must be the
    /// training set the labels were assigned over.
    public static func forwardPass(for file: SafeTensorsFile, train: Dataset, comm: Communicator, batch: Int) throws -> ForwardPass {
        let meta = try verified(file)
        if let n = meta.trainSamples, n != train.count {
            throw CheckpointError(path: file.path, message: "was trained on \(n) samples, the data given has \(train.count); labels are per training sample")
        }
        guard train.dimension == meta.model.shape.input else {
            throw CheckpointError(path: file.path, message: "input_dim \(meta.model.shape.input) does not match the data's \(train.dimension) pixels")
        }
        let model = try VAEASModel(spec: meta.model, samples: 1, batch: batch, localCapacity: 0, trainSet: train,
                                   comm: comm)
        try model.load(file)
        let feed = DataFeed(dataset: train, binarization: meta.binarize, seed: meta.model.seed)
        return ForwardPass(model: model, feed: feed)
    }
}
