import VAEASConfig
import VAEASCore
import SafeTensors

/// The classifier's V-way output layer, partitioned across ranks: the full
/// softmax (`PartitionedSoftmax`) or the hierarchical one
/// (`PartitionedTreeSoftmax`). What the step needs of it and nothing of its
/// layout: the maths of a step, this rank's rows and their optimizer, its
/// state in a checkpoint (which it saves and loads itself, PyTorch DCP's
/// `Stateful`), and what it costs.
public protocol PartitionedOutputLayer: AnyObject {
    // MARK: the maths of a step

    /// Which layer this is (what checkpoints record, and what a benchmark needs
    /// to know), so that no call site has to test the concrete type.
    var softmax: SoftmaxKind { get }
    var labels: Int { get }
    /// h, the width of the hidden rows it reads.
    var width: Int { get }
    /// The allgather (forward) / reduce-scatter (backward) pair; after
    /// `backward` its `dHiddenCE` and `dHiddenMI` hold this rank's dH.
    var rowGather: RowGather { get }
    /// −log s_ω(e_r | z_r) per global row after `forward` (the same on every rank).
    var crossEntropy: UnsafeMutablePointer<Double> { get }
    /// Scores all `batch · samples` global rows: this rank contributes its
    /// `localRows` hidden rows; `targets` holds every global row's label.
    func forward(hLocal: UnsafePointer<Float>, localRows: Int, targets: UnsafeBufferPointer<Int32>, batch: Int, samples: Int)
    /// Ĥ of global row r (after `forward`).
    func hHat(_ r: Int, _ estimator: MIEstimator) -> Double
    /// Gradients of `ceScale · Σ_r CE_r` into the owned rows and the hidden
    /// rows; when `miScale` ≠ 0 also of `miScale · Σ_r Ĥ_r` into the hidden
    /// rows only (the layer held fixed inside Î).
    func backward(ceScale: Float, miScale: Float, estimator: MIEstimator)

    // MARK: this rank's rows and their optimizer

    /// This rank's parameters and gradients (label rows, or tree nodes).
    var store: ParameterStore { get }
    /// Rows of the layer this rank owns.
    var ownedRows: Int { get }
    /// Row (or node) e is drawn from counter (`InitStream.classifierOut`, e): the
    /// same values at any rank count.
    func initialize(rng: Philox, scheme: Initialization)
    /// Ready for the next step's gradients: they read as zero, or (the full
    /// softmax) are overwritten by the next backward.
    func zeroGrads()
    /// A number that is finite iff every current gradient of this rank's rows
    /// is: their sum, or a bound on them that the backward proved finite.
    func gradientCheck() -> Double
    /// Σ g² over the rows this rank accounts for: summed over ranks, every
    /// global row counts once (the tree's replicated top on rank 0 only; counted
    /// once per rank it made ‖∇‖, and so `train.clip_grad_norm`, depend on P:
    /// issue #21, defect 6).
    func uniqueGradientSquares() -> Double
    /// One optimizer step on this rank's rows.
    func applyUpdate(lr: Float, beta1: Float, beta2: Float, eps: Float)

    // MARK: checkpoints

    /// This rank's part of a training-state checkpoint: its rows (each global
    /// row saved by one rank) with their Adam moments.
    func shardState() -> RowShardState
    /// This rank's rows and their Adam moments from the shards of any number of
    /// ranks (resharding); `adamStep` 0: the optimizer had not stepped yet.
    func loadShardState(_ saved: SavedRows, adamStep: Int, lr: Float, beta1: Float, beta2: Float, eps: Float) throws
    /// The whole layer on rank 0, in label (or preorder) order, for `model.safetensors` (collective; nil elsewhere).
    func gatheredTensors() -> [(name: String, shape: [Int], data: [Float])]?
    /// This rank's rows from a checkpoint written by `gatheredTensors`.
    func load(from file: SafeTensorsFile) throws

    // MARK: what it costs

    /// Bytes this rank sent in the last step (to set beside V·h for a replicated layer).
    var bytesSentLastStep: Int { get }
    /// Bytes this rank holds for the layer (parameters, gradients, moments, step buffers).
    var memoryBytes: Int { get }
}

/// Draws one output row (weight `w`, h numbers, and its bias) from counter
/// (tensorID, id): the same row gets the same values whatever the partition.
/// Glorot: U(±√(6/(fanIn+fanOut))), zero bias; pytorch: U(±1/√h) for both.
func initializeRow(_ w: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>, width h: Int, fanOut: Int,
                   rng: Philox, tensorID: UInt32, id: Int, scheme: Initialization) {
    let bound: Float = scheme == .glorot ? (6 / Float(h + fanOut)).squareRoot() : 1 / Float(h).squareRoot()
    rng.fillUniform(w, count: h, c1: tensorID, c2: UInt32(id))
    for j in 0..<h { w[j] = (2 * w[j] - 1) * bound }
    if scheme == .glorot {
        bias.pointee = 0
    } else {
        var u: Float = 0
        rng.fillUniform(&u, count: 1, c1: tensorID, c2: UInt32(id), c3: 1)
        bias.pointee = (2 * u - 1) * bound
    }
}
