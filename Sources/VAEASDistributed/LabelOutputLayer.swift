import VAEASConfig
import VAEASCore
import SafeTensors

/// The classifier's V-way output layer, partitioned across ranks: the full
/// softmax (`PartitionedSoftmax`) or the hierarchical one
/// (`PartitionedTreeSoftmax`). Three concerns, three protocols: the maths of a
/// step (this one), the rank's shard of parameters and its optimizer
/// (`ShardedParameters`), and the checkpoint's gathered tensors (`ShardedCheckpoint`).
public protocol LabelOutputLayer: AnyObject {
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
    /// Bytes this rank sent in the last step (to set beside V·h for a replicated layer).
    var bytesSentLastStep: Int { get }
    /// Bytes this rank holds for the layer (parameters, gradients, moments, step buffers).
    var memoryBytes: Int { get }
}

/// A rank's own rows of a partitioned layer and their optimizer.
public protocol ShardedParameters: AnyObject {
    /// This rank's parameters and gradients.
    var store: ParameterStore { get }
    /// Rows of the layer this rank owns (label rows, or tree nodes).
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
    /// One optimizer step on this rank's rows.
    func applyUpdate(lr: Float, beta1: Float, beta2: Float, eps: Float)
    /// The global row (label, or tree node in preorder) of each local row, in
    /// local order: what a sharded training-state checkpoint records.
    var globalRows: [Int] { get }
    /// Local rows this rank writes into a sharded checkpoint (replicated rows
    /// only on rank 0, so each global row is written once).
    var rowsToSave: Range<Int> { get }
    /// Row k's weight (h floats) and bias live at `store` offsets
    /// `weightOffset + k·h` and `biasOffset + k`.
    var weightOffset: Int { get }
    var biasOffset: Int { get }
    /// The optimizer (nil before the first update).
    var optimizer: Adam? { get }
    /// Restores the optimizer from saved moments (laid out as `store`).
    func restoreOptimizer(step: Int, m: UnsafePointer<Float>, v: UnsafePointer<Float>, lr: Float, beta1: Float,
                          beta2: Float, eps: Float)
}

extension ShardedParameters {
    public var rowsToSave: Range<Int> { 0..<ownedRows }
}

extension ShardedParameters where Self: LabelOutputLayer {
    /// Σ g² over the rows this rank accounts for (`rowsToSave`): summed over
    /// ranks, every global row counts once. The tree's replicated top holds
    /// the same summed gradient on every rank; counting it once per rank made
    /// ‖∇‖, and so `train.clip_grad_norm`'s scale, depend on P (issue #21, defect 6).
    public func uniqueGradientSquares() -> Double {
        let rows = rowsToSave, h = width
        guard !rows.isEmpty else { return 0 }
        return Kernels.sumOfSquares(store.grads + weightOffset + rows.lowerBound * h, count: rows.count * h)
            + Kernels.sumOfSquares(store.grads + biasOffset + rows.lowerBound, count: rows.count)
    }
}

/// The layer in the checkpoint: gathered in label (or preorder) order on rank 0.
public protocol ShardedCheckpoint: AnyObject {
    /// The whole layer on rank 0 (collective; nil elsewhere).
    func gatheredTensors() -> [(name: String, shape: [Int], data: [Float])]?
    /// This rank's rows from a checkpoint written by `gatheredTensors`.
    func load(from file: SafeTensorsFile) throws
}

public typealias PartitionedOutputLayer = LabelOutputLayer & ShardedParameters & ShardedCheckpoint

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
