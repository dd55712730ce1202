import VAEASConfig
import VAEASCore
import SafeTensors
#if canImport(Glibc)
import Glibc
#endif

/// The hierarchical softmax (paper §3.5; Morin & Bengio 2005), partitioned
/// across ranks (design doc, "The hierarchical softmax, partitioned").
///
/// **Tree.** V leaves (one per label) and V − 1 internal nodes. The node over
/// leaves [lo, hi) splits at mid = lo + ⌈(hi − lo)/2⌉; the path goes left
/// (towards [lo, mid)) with probability σ(w·h + b). s(e | z) is the product
/// along e's path: O(h log₂ V) per row, and the leaf probabilities sum to 1 by
/// construction. Nodes are numbered in preorder (root 0, then its left
/// subtree, then its right one), so every subtree is a contiguous block of
/// ids; that is the row order of `classifier.tree.weight` [V − 1, h] and
/// `classifier.tree.bias` [V − 1] in checkpoints.
///
/// **Partition.** With d = ⌈log₂ P⌉, the subtrees hanging at depth d (2^d of
/// them when V ≥ 2^d) are dealt contiguously to the ranks, so each rank owns
/// the subtrees over one contiguous leaf range; the 2^d − 1 nodes above them
/// are replicated, their gradients summed with one small allreduce. The tree
/// does not depend on P, so P = 1, 2, 3 compute the same function.
///
/// **Step.** The hidden rows are allgathered (as for the full softmax); the
/// rank owning a row's leaf walks the whole path (replicated top and own
/// subtree), so one allreduce-SUM of the R-vector of −log p gives every rank
/// every row's CE, and dH returns by one reduce-scatter. Only nodes on the
/// batch's paths are read or written, and the optimizer is sparse: PyTorch's
/// SparseAdam rule (`torch.optim.SparseAdam`), which updates a node's moments
/// only on the steps where it has a gradient, with bias correction from the
/// global step count. Communication per step: O(R·h + 2^d·h) floats, whatever V is.
public final class PartitionedTreeSoftmax: PartitionedOutputLayer, RowStorage {
    public var softmax: SoftmaxKind { .tree }
    public let labels: Int
    public let width: Int
    public let comm: Communicator
    /// Which nodes this rank holds.
    public let partition: TreePartition
    public var nodeCount: Int { partition.nodeCount }
    public var topCount: Int { partition.topCount }
    public let store: ParameterStore
    public let weight: Int
    public let bias: Int
    public let globalRowCapacity: Int
    public let rowGather: RowGather

    public let crossEntropy: UnsafeMutablePointer<Double>
    let negLogP: UnsafeMutablePointer<Float>      // R, summed over ranks
    /// Per owned row and path step: local node row, direction s = ±1 and σ(−s·t).
    let pathNode: UnsafeMutablePointer<Int32>
    let pathSign: UnsafeMutablePointer<Float>
    let pathSig: UnsafeMutablePointer<Float>
    let pathLength: UnsafeMutablePointer<Int32>
    /// Nodes touched this step (deduplicated by `stamp`), for sparse zeroing and updates.
    let touched: UnsafeMutablePointer<Int32>
    private var touchedCount = 0
    let stamp: UnsafeMutablePointer<Int32>
    private var stepStamp: Int32 = 0
    /// SparseAdam (created at the first update, with that step's hyperparameters).
    var adam: Adam?
    private let arena = Arena()

    public var rows: Int { rowGather.rows }
    public private(set) var bytesSentLastStep = 0

    public init(labels: Int, width: Int, comm: Communicator, globalRowCapacity: Int, localRowCapacity: Int) {
        precondition(labels >= 2, "the tree needs V ≥ 2 labels")
        self.labels = labels
        self.width = width
        self.comm = comm
        self.globalRowCapacity = globalRowCapacity
        partition = TreePartition(labels: labels, ranks: comm.size, rank: comm.rank)
        let next = partition.nodeCount, depth = partition.maxDepth
        let store = ParameterStore()
        // Top rows first: their gradients are one contiguous block to allreduce.
        weight = store.register("classifier.tree.weight", shape: [next, width])
        bias = store.register("classifier.tree.bias", shape: [next])
        store.allocate()
        self.store = store
        let r = globalRowCapacity
        rowGather = RowGather(comm: comm, width: width, globalRowCapacity: r, localRowCapacity: localRowCapacity)
        crossEntropy = arena.doubles(r)
        negLogP = arena.floats(r)
        pathNode = arena.int32s(r * depth)
        pathSign = arena.floats(r * depth)
        pathSig = arena.floats(r * depth)
        pathLength = arena.int32s(r)
        touched = arena.int32s(next)
        stamp = arena.int32s(next)
        stamp.update(repeating: -1, count: max(next, 1))
    }

    public var ownedRows: Int { nodeCount }
    public var globalRows: [Int] { partition.ownedNodes.sorted { $0.row < $1.row }.map(\.id) }
    /// The replicated top (local rows 0..<topCount) is saved by rank 0 only.
    public var rowsToSave: Range<Int> { (comm.rank == 0 ? 0 : topCount)..<nodeCount }

    /// Row k of the local store is drawn from counter (tensorID, preorder id):
    /// the same node gets the same values whatever P is.
    public func initialize(rng: Philox, scheme: Initialization) {
        let tensorID = InitStream.classifierOut
        // A node is a binary classifier: fan-out 1.
        func fill(_ row: Int, _ id: Int) {
            initializeRow(store.values + weight + row * width, bias: store.values + bias + row, width: width, fanOut: 1,
                          rng: rng, tensorID: tensorID, id: id, scheme: scheme)
        }
        for node in partition.ownedNodes { fill(node.row, node.id) }
    }

    /// Allgather the hidden rows, walk the paths of the rows whose leaf this
    /// rank owns, and allreduce −log p.
    public func forward(hLocal: UnsafePointer<Float>, localRows: Int, targets rowLabels: UnsafeBufferPointer<Int32>,
                        batch: Int, samples: Int) {
        rowGather.forward(hLocal, localRows: localRows, targets: rowLabels, batch: batch, samples: samples)
        let rows = rowGather.rows, targets = rowGather.targets
        let h = width, part = partition, maxDepth = part.maxDepth
        let hFull = rowGather.hidden
        let w = store.values + weight, b = store.values + bias
        for r in 0..<rows {
            let e = Int(targets[r])
            guard part.ownedLeaves.contains(e) else { negLogP[r] = 0; pathLength[r] = 0; continue }
            let u = part.unit(of: e)
            let x = hFull + r * h
            var lo = 0, hi = labels, id = 0, depth = 0, k = 0
            var nlp: Float = 0
            while hi - lo >= 2 {
                let row = part.localRow(id: id, depth: depth, unitIndex: u)
                let wr = w + row * h
                var t = b[row]
                for j in 0..<h { t += wr[j] * x[j] }
                let mid = CanonicalTree.split(lo, hi)
                let left = e < mid
                let s: Float = left ? 1 : -1
                // −log σ(s·t) = softplus(−s·t), stably.
                let a = -s * t
                nlp += max(a, 0) + log1pf(expf(-abs(a)))
                let sig = a >= 0 ? 1 / (1 + expf(-a)) : expf(a) / (1 + expf(a))   // σ(−s·t)
                pathNode[r * maxDepth + k] = Int32(row)
                pathSign[r * maxDepth + k] = s
                pathSig[r * maxDepth + k] = sig
                k += 1
                if left { hi = mid; id += 1 } else { id += mid - lo; lo = mid }
                depth += 1
            }
            pathLength[r] = Int32(k)
            negLogP[r] = nlp
        }
        comm.allreduceSum(UnsafeMutableBufferPointer(start: negLogP, count: rows))
        for r in 0..<rows { crossEntropy[r] = Double(negLogP[r]) }
        bytesSentLastStep = rowGather.bytesSent + (comm.size > 1 ? 4 * rows : 0)
    }

    public func hHat(_ r: Int, _ estimator: MIEstimator) -> Double {
        Estimators.hHat(estimator, crossEntropy: crossEntropy[r], entropy: nil, labels: labels)
    }

    /// d(−log p)/dt_v = −s·σ(−s·t_v) along the path. The CE gradient goes into
    /// the nodes (scaled by `ceScale`) and into h; the Î gradient (for `ce` and
    /// `fano` a multiple of the same per-row vector) into h only.
    public func backward(ceScale: Float, miScale: Float, estimator: MIEstimator) {
        precondition(estimator != .entropy || miScale == 0, "the tree cannot give the entropy estimator's gradient")
        let h = width, rows = self.rows, targets = rowGather.targets
        let withMI = miScale != 0
        let cols = rowGather.columns(withMI: withMI)
        let hFull = rowGather.hidden, dHPartial = rowGather.partial, maxDepth = partition.maxDepth
        stepStamp &+= 1
        touchedCount = 0
        let w = store.values + weight, gw = store.grads + weight, gb = store.grads + bias
        dHPartial.update(repeating: 0, count: rows * cols)
        for r in 0..<rows {
            let k = Int(pathLength[r])
            if k == 0 { continue }
            let x = hFull + r * h
            let dce = dHPartial + r * cols
            let miFactor = withMI ? miScale * Float(Estimators.hHatSlope(estimator, crossEntropy: crossEntropy[r], labels: labels)) : 0
            for step in 0..<k {
                let row = Int(pathNode[r * maxDepth + step])
                let g = -pathSign[r * maxDepth + step] * pathSig[r * maxDepth + step]   // d(−log p)/dt
                if stamp[row] != stepStamp {
                    stamp[row] = stepStamp
                    touched[touchedCount] = Int32(row)
                    touchedCount += 1
                }
                let gs = g * ceScale
                let wr = w + row * h, gwr = gw + row * h
                for j in 0..<h { gwr[j] += gs * x[j] }
                gb[row] += gs
                for j in 0..<h { dce[j] += gs * wr[j] }
                if withMI {
                    let gm = g * miFactor
                    let dmi = dce + h
                    for j in 0..<h { dmi[j] += gm * wr[j] }
                }
            }
        }
        // The replicated top nodes collect gradients on the ranks owning the rows below them.
        if topCount > 0 && comm.size > 1 {
            comm.allreduceSum(UnsafeMutableBufferPointer(start: gw, count: topCount * h))
            comm.allreduceSum(UnsafeMutableBufferPointer(start: gb, count: topCount))
        }
        rowGather.backward(withMI: withMI)
        bytesSentLastStep = rowGather.bytesSent + (comm.size > 1 ? 4 * (rows + topCount * (h + 1)) : 0)
    }

    /// Zeroes only what the last step touched (and the replicated top).
    public func zeroGrads() {
        let h = width
        for i in 0..<touchedCount {
            let row = Int(touched[i])
            (store.grads + weight + row * h).update(repeating: 0, count: h)
            store.grads[bias + row] = 0
        }
        (store.grads + weight).update(repeating: 0, count: topCount * h)
        (store.grads + bias).update(repeating: 0, count: topCount)
    }

    /// The sum of the touched rows' gradients (NaN or inf if one is not finite).
    public func gradientCheck() -> Double {
        var s = 0.0
        for i in 0..<touchedCount {
            let row = Int(touched[i])
            s += Kernels.sum(store.grads + weight + row * width, count: width) + Double(store.grads[bias + row])
        }
        // The top's summed gradient includes other ranks' contributions.
        if topCount > 0 { s += Kernels.sum(store.grads + weight, count: topCount * width) + Kernels.sum(store.grads + bias, count: topCount) }
        return s
    }

    /// SparseAdam: the rows with a gradient this step, and the replicated top
    /// rows whose summed gradient is non-zero (identically on every rank).
    public func applyUpdate(lr: Float, beta1: Float, beta2: Float, eps: Float) {
        if adam == nil { adam = Adam(count: store.count, lr: lr, beta1: beta1, beta2: beta2, eps: eps) }
        let adam = self.adam!
        adam.lr = lr   // a schedule may change it between steps
        let s = adam.beginSparseStep()
        let h = width
        func updateRow(_ row: Int) {
            adam.updateSparse(store.values, grads: store.grads, (weight + row * h)..<(weight + (row + 1) * h), s)
            adam.updateSparse(store.values, grads: store.grads, (bias + row)..<(bias + row + 1), s)
        }
        for row in 0..<topCount {
            var any = store.grads[bias + row] != 0
            if !any { for j in 0..<h where store.grads[weight + row * h + j] != 0 { any = true; break } }
            if any { updateRow(row) }
        }
        for i in 0..<touchedCount where Int(touched[i]) >= topCount { updateRow(Int(touched[i])) }
    }

    public func shardState() -> RowShardState { rowShardState() }
    public func loadShardState(_ saved: SavedRows, adamStep: Int, lr: Float, beta1: Float, beta2: Float, eps: Float) throws {
        try loadRowShard(saved, adamStep: adamStep, lr: lr, beta1: beta1, beta2: beta2, eps: eps)
    }
    public func uniqueGradientSquares() -> Double { rowGradientSquares() }

    public var memoryBytes: Int {
        Self.memoryBytes(nodes: nodeCount, width: width, globalRows: globalRowCapacity, maxDepth: partition.maxDepth)
    }

    /// Bytes for `nodes` local nodes (weights, biases, gradients, two moments)
    /// and the per-row path buffers, without building the layer (`--dry-run`).
    public static func memoryBytes(nodes: Int, width: Int, globalRows: Int, maxDepth: Int) -> Int {
        16 * nodes * (width + 1) + globalRows * maxDepth * 12
    }
}
