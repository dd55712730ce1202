import SafeTensors
/// Per-rank element counts of one batch's rows: the allgather of the hidden
/// rows (h floats each) and the reduce-scatter of dH (h, or 2h when the Î
/// gradient rides along).
public struct RowLayout: Sendable {
    public let gather: RankCounts
    public let scatter1: RankCounts
    public let scatter2: RankCounts
}

/// Row layouts of the batch sizes a run meets (the full batch, and the short
/// last one), computed once each: the step loop then allocates nothing.
public final class RowLayoutCache {
    let ranks: Int
    let width: Int
    private var cache: [Int: RowLayout] = [:]

    public init(ranks: Int, width: Int) { self.ranks = ranks; self.width = width }

    /// A batch of `batch` samples with `samples` rows each, split over ranks as the batch is.
    public func layout(batch: Int, samples: Int) -> RowLayout {
        let key = batch &* 4096 &+ samples
        if let c = cache[key] { return c }
        let p = BlockPartition(total: batch, parts: ranks)
        let rowsPer = (0..<ranks).map { p.count($0) * samples }
        let c = RowLayout(gather: RankCounts(rowsPer.map { $0 * width }), scatter1: RankCounts(rowsPer.map { $0 * width }),
                          scatter2: RankCounts(rowsPer.map { $0 * 2 * width }))
        cache[key] = c
        return c
    }
}

/// Reduce-scatters dH (rows × cols, cols = h or 2h for [CE | Î]) and copies this
/// rank's rows into the two contiguous gradient buffers the hidden layers read.
func scatterHiddenGradients(_ comm: Communicator, partial: UnsafeMutablePointer<Float>, received: UnsafeMutablePointer<Float>,
                            rows: Int, localRows: Int, width h: Int, withMI: Bool, layout: RowLayout,
                            ce: UnsafeMutablePointer<Float>, mi: UnsafeMutablePointer<Float>) {
    let cols = withMI ? 2 * h : h
    comm.reduceScatterv(send: UnsafeBufferPointer(start: partial, count: rows * cols),
                        receive: UnsafeMutableBufferPointer(start: received, count: localRows * cols),
                        counts: withMI ? layout.scatter2 : layout.scatter1)
    for r in 0..<localRows {
        (ce + r * h).update(from: received + r * cols, count: h)
        if withMI { (mi + r * h).update(from: received + r * cols + h, count: h) }
    }
}

/// The classifier's V-way output layer, partitioned across ranks: the full
/// softmax (`PartitionedSoftmax`) or the hierarchical one (`PartitionedTreeSoftmax`).
/// The classifier and trainer drive either through this.
public protocol LabelOutputLayer: AnyObject {
    var labels: Int { get }
    var width: Int { get }
    /// This rank's parameters (and gradients).
    var store: ParameterStore { get }
    /// Labels of the step's global rows, set before `forward`.
    var targets: UnsafeMutablePointer<Int32> { get }
    /// −log s_ω(e_r | z_r) per global row after `forward` (same on every rank).
    var crossEntropy: UnsafeMutablePointer<Double> { get }
    /// Gradients wrt this rank's hidden rows after `backward`.
    var dHiddenCE: UnsafeMutablePointer<Float> { get }
    var dHiddenMI: UnsafeMutablePointer<Float> { get }
    var bytesSentLastStep: Int { get }
    var memoryBytes: Int { get }
    /// Rows of the layer this rank owns (label rows, or tree nodes).
    var ownedRows: Int { get }

    func layout(batch: Int, samples: Int) -> RowLayout
    func initialize(rng: Philox, tensorID: UInt32, scheme: Initialization)
    func forward(hLocal: UnsafePointer<Float>, localRows: Int, rows: Int, layout: RowLayout)
    func backward(ceScale: Float, miScale: Float, estimator: MIEstimator, layout: RowLayout)
    /// Ĥ of global row r (after `forward`).
    func hHat(_ r: Int, _ estimator: MIEstimator) -> Double
    /// Ready for the next step's gradients.
    func zeroGrads()
    /// Sum of this rank's current gradients (NaN if any is not finite).
    func gradientSum() -> Double
    /// Applies one optimizer step to this rank's rows.
    func applyUpdate(lr: Float, beta1: Float, beta2: Float, eps: Float)
    /// The whole layer on rank 0 (collective; nil elsewhere), as checkpoint tensors.
    func gatheredTensors() -> [(name: String, shape: [Int], data: [Float])]?
    /// This rank's rows from a checkpoint written by `gatheredTensors`.
    func load(from file: SafeTensorsFile) throws
}

extension LabelOutputLayer {
    /// Ĥ for the estimators that need only −log p_e (all but `entropy`).
    func hHatFromCrossEntropy(_ ce: Double, _ estimator: MIEstimator) -> Double {
        switch estimator {
        case .ce, .entropy: return ce
        case .fano:
            let pe = PartitionedSoftmax.errorProbability(ce)
            return PartitionedSoftmax.binaryEntropy(pe) + pe * log(Double(max(labels - 1, 1)))
        }
    }

    /// dĤ/dCE for `ce` (1) and `fano` (h′(P) + log(V−1)) · (1 − P), P = 1 − e^{−CE}.
    func hHatSlope(_ ce: Double, _ estimator: MIEstimator) -> Double {
        switch estimator {
        case .ce, .entropy: return 1
        case .fano:
            let pe = PartitionedSoftmax.errorProbability(ce)
            return (log1p(-pe) - log(pe) + log(Double(max(labels - 1, 1)))) * (1 - pe)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

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

/// The checkpoint tensor `name`, checked against the expected shape.
func checkpointTensor(_ file: SafeTensorsFile, _ name: String, shape: [Int]) throws -> [Float] {
    guard file.names.contains(name) else { throw CheckpointError(path: file.path, message: "missing tensor '\(name)'") }
    let s = try file.shape(of: name)
    guard s == shape else { throw CheckpointError(path: file.path, message: "tensor '\(name)' has shape \(s), expected \(shape)") }
    return try file.floats(name)
}
