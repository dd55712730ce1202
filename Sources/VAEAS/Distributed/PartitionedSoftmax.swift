import SafeTensors
#if canImport(Glibc)
import Glibc
#endif

/// Which Ĥ_i the mutual-information estimate Î = log V − mean_i Ĥ_i uses
/// (design doc, "Mutual information and marginal KL").
public enum MIEstimator: String, Sendable, CaseIterable {
    /// Ĥ = H(s_ω(·|z)) = −Σ_j p_j log p_j (eq. 13): needs every label's probability.
    case entropy
    /// Ĥ = CE = −log p_e: Î is then the Barber–Agakov lower bound on MI.
    case ce
    /// Ĥ = h(P_e) + P_e log(V − 1), P_e = 1 − p_e (Fano; Theorem 3.3).
    case fano
}

/// The classifier's V-way output layer, partitioned by label rows across ranks
/// (design doc, "The partitioned output layer"; Megatron-LM's
/// vocabulary-parallel cross entropy).
///
/// Rank r owns rows [⌊V·r/P⌋, ⌊V·(r+1)/P⌋) of W (V × h) and b, with their
/// gradients, in `store`; no rank holds all V rows. One step:
/// 1. allgather the local hidden rows → H (R × h), all R = B·L global rows;
/// 2. local logits ℓ_r = H W_rᵀ + b_r;
/// 3. allreduce-MAX of each row's local max m;
/// 4–5. one allreduce-SUM of [Σ e^{ℓ−m}, Σ e^{ℓ−m}(ℓ−m), ℓ_e − m] (3R floats),
///    giving log Z, CE and the entropy on every rank;
/// 6. local gradients wrt the owned rows, and dH = Σ_r dℓ_r W_r
///    reduce-scattered back to the ranks that own the hidden rows.
/// Communication per step is O(R·h + R) floats whatever V is.
public final class PartitionedSoftmax: LabelOutputLayer {
    public let labels: Int
    public let width: Int
    public let comm: Communicator
    public let partition: BlockPartition
    public let owned: Range<Int>
    /// `classifier.out.weight` [V_r, h] and `classifier.out.bias` [V_r]: this rank's rows.
    public let store: ParameterStore
    public let weight: Int
    public let bias: Int
    public let globalRowCapacity: Int
    public let localRowCapacity: Int

    let hFull: UnsafeMutablePointer<Float>      // R × h
    let logits: UnsafeMutablePointer<Float>     // R × V_r; becomes the Î gradient
    let probs: UnsafeMutablePointer<Float>      // R × V_r; becomes the CE gradient
    let rowMax: UnsafeMutablePointer<Float>     // R
    let sums: UnsafeMutablePointer<Float>       // 3R: Σe, Σe(ℓ−m), ℓ_e − m
    let dHPartial: UnsafeMutablePointer<Float>  // R × 2h
    let dHLocal: UnsafeMutablePointer<Float>    // localRows × 2h
    /// Gradients wrt this rank's hidden rows: of the classifier's CE and of the Î term.
    public let dHiddenCE: UnsafeMutablePointer<Float>   // localRows × h
    public let dHiddenMI: UnsafeMutablePointer<Float>   // localRows × h
    /// Per global row (identical on every rank after `forward`).
    public let crossEntropy: UnsafeMutablePointer<Double>
    public let entropy: UnsafeMutablePointer<Double>
    public let targets: UnsafeMutablePointer<Int32>
    public private(set) var rows = 0
    private var localRows = 0
    private lazy var layouts = RowLayoutCache(ranks: comm.size, width: width)
    private var adam: Adam?

    /// Bytes this rank sends per step (allgather + allreduces + reduce-scatter),
    /// to set beside the V·h floats a replicated layer would allreduce.
    public private(set) var bytesSentLastStep = 0

    public init(labels: Int, width: Int, comm: Communicator, globalRowCapacity: Int, localRowCapacity: Int) {
        precondition(labels >= 1 && width >= 1)
        self.labels = labels
        self.width = width
        self.comm = comm
        partition = BlockPartition(total: labels, parts: comm.size)
        owned = partition.range(comm.rank)
        self.globalRowCapacity = globalRowCapacity
        self.localRowCapacity = localRowCapacity
        let store = ParameterStore()
        weight = store.register("classifier.out.weight", shape: [owned.count, width])
        bias = store.register("classifier.out.bias", shape: [owned.count])
        store.allocate()
        self.store = store
        let r = globalRowCapacity, v = max(owned.count, 1)
        hFull = .allocate(capacity: r * width)
        logits = .allocate(capacity: r * v)
        probs = .allocate(capacity: r * v)
        rowMax = .allocate(capacity: r)
        sums = .allocate(capacity: 3 * r)
        dHPartial = .allocate(capacity: r * 2 * width)
        dHLocal = .allocate(capacity: localRowCapacity * 2 * width)
        dHiddenCE = .allocate(capacity: localRowCapacity * width)
        dHiddenMI = .allocate(capacity: localRowCapacity * width)
        crossEntropy = .allocate(capacity: r)
        entropy = .allocate(capacity: r)
        targets = .allocate(capacity: r)
    }

    deinit {
        for p in [hFull, logits, probs, rowMax, sums, dHPartial, dHLocal, dHiddenCE, dHiddenMI] { p.deallocate() }
        crossEntropy.deallocate(); entropy.deallocate(); targets.deallocate()
    }

    /// Initialises the owned rows. Row e is drawn from counter (tensorID, e),
    /// so the full layer is the same whatever the number of ranks.
    public func initialize(rng: Philox, tensorID: UInt32, scheme: Initialization) {
        for k in 0..<owned.count {
            initializeRow(store.values + weight + k * width, bias: store.values + bias + k, width: width, fanOut: labels,
                          rng: rng, tensorID: tensorID, id: owned.lowerBound + k, scheme: scheme)
        }
    }

    /// Row counts of a global batch of `batch` samples with `samples` rows each,
    /// split over ranks as the batch is. Cached: a run has at most two batch sizes.
    public func layout(batch: Int, samples: Int) -> RowLayout { layouts.layout(batch: batch, samples: samples) }

    /// Steps 1–5 for `rows` global rows (this rank contributes `hLocal`,
    /// `localRows` × h). `targets[0..<rows]` must hold every global row's label.
    /// Fills `crossEntropy` and `entropy` per global row.
    public func forward(hLocal: UnsafePointer<Float>, localRows: Int, rows: Int, layout: RowLayout) {
        precondition(rows <= globalRowCapacity && localRows <= localRowCapacity)
        self.rows = rows
        self.localRows = localRows
        let h = width, v = owned.count, lo = owned.lowerBound
        comm.allgatherv(send: UnsafeBufferPointer(start: hLocal, count: localRows * h),
                        receive: UnsafeMutableBufferPointer(start: hFull, count: rows * h), counts: layout.gather)
        // ℓ = H W_rᵀ + b_r
        let b = store.values + bias
        for r in 0..<rows { (logits + r * v).update(from: b, count: v) }
        BLAS.gemm(transA: false, transB: true, m: rows, n: v, k: h, a: hFull, lda: h,
                  b: store.values + weight, ldb: h, beta: 1, c: logits, ldc: max(v, 1))
        for r in 0..<rows { rowMax[r] = v > 0 ? Kernels.rowMax(logits + r * v, count: v) : -.greatestFiniteMagnitude }
        comm.allreduceMax(UnsafeMutableBufferPointer(start: rowMax, count: rows))
        for r in 0..<rows {
            let m = rowMax[r]
            let (s, a) = Kernels.expShifted(logits + r * v, probs + r * v, count: v, shift: m)
            sums[r] = Float(s)
            sums[rows + r] = Float(a)
            let e = Int(targets[r])
            sums[2 * rows + r] = owned.contains(e) ? logits[r * v + e - lo] - m : 0
        }
        comm.allreduceSum(UnsafeMutableBufferPointer(start: sums, count: 3 * rows))
        for r in 0..<rows {
            let s = Double(sums[r])
            let logS = log(s)
            crossEntropy[r] = logS - Double(sums[2 * rows + r])
            entropy[r] = logS - Double(sums[rows + r]) / s
            let inv = Float(1 / s)
            let p = probs + r * v
            for j in 0..<v { p[j] *= inv }
        }
        bytesSentLastStep = 4 * (localRows * h + rows + 3 * rows)
    }

    /// Ĥ of global row r for `estimator`.
    @inline(__always)
    public func hHat(_ r: Int, _ estimator: MIEstimator) -> Double {
        estimator == .entropy ? entropy[r] : hHatFromCrossEntropy(crossEntropy[r], estimator)
    }

    /// P_e = 1 − e^{−CE}, kept inside (0, 1) so that h(P_e) and its derivative stay finite.
    static func errorProbability(_ ce: Double) -> Double { min(max(-expm1(-ce), 1e-12), 1 - 1e-12) }
    static func binaryEntropy(_ p: Double) -> Double { -p * log(p) - (1 - p) * log1p(-p) }

    /// Step 6. Gradients of `ceScale · Σ_rows CE` into the owned rows (W_r, b_r)
    /// and into the hidden rows (`dHiddenCE`); when `miScale` ≠ 0 also the
    /// gradient of `miScale · Σ_rows Ĥ` into the hidden rows (`dHiddenMI`), with
    /// W, b held fixed (their gradient from this term is not taken).
    public func backward(ceScale: Float, miScale: Float, estimator: MIEstimator, layout: RowLayout) {
        let h = width, v = owned.count, lo = owned.lowerBound, rows = self.rows
        let withMI = miScale != 0
        if withMI {
            // Î gradient wrt the logits, in place over ℓ (read before written, element by element).
            for r in 0..<rows {
                let l = logits + r * v, p = probs + r * v
                let e = Int(targets[r])
                switch estimator {
                case .entropy:
                    // dH/dℓ_j = −p_j (ℓ_j − Σ p ℓ), with Σ p ℓ = m + A/S
                    let mean = rowMax[r] + Float(Double(sums[rows + r]) / Double(sums[r]))
                    for j in 0..<v { l[j] = -miScale * p[j] * (l[j] - mean) }
                case .ce, .fano:
                    // Ĥ is a function of CE alone: dĤ/dℓ_j = dĤ/dCE · (p_j − δ_je).
                    let coef = Float(hHatSlope(crossEntropy[r], estimator)) * miScale
                    for j in 0..<v { l[j] = coef * p[j] }
                    if owned.contains(e) { l[e - lo] -= coef }
                }
            }
        }
        // CE gradient p − onehot, scaled, in place over p.
        for r in 0..<rows {
            let p = probs + r * v
            for j in 0..<v { p[j] *= ceScale }
            let e = Int(targets[r])
            if owned.contains(e) { p[e - lo] -= ceScale }
        }
        let gW = store.grads + weight, gb = store.grads + bias
        BLAS.gemm(transA: true, transB: false, m: v, n: h, k: rows, a: probs, lda: max(v, 1),
                  b: hFull, ldb: h, beta: 1, c: gW, ldc: h)
        for r in 0..<rows {
            let p = probs + r * v
            for j in 0..<v { gb[j] += p[j] }
        }
        // dH partial sums, [CE | Î] side by side so one reduce-scatter carries both.
        let w = withMI ? 2 * h : h
        if v == 0 {
            dHPartial.update(repeating: 0, count: rows * w)
        } else {
            BLAS.gemm(transA: false, transB: false, m: rows, n: h, k: v, a: probs, lda: v,
                      b: store.values + weight, ldb: h, beta: 0, c: dHPartial, ldc: w)
            if withMI {
                BLAS.gemm(transA: false, transB: false, m: rows, n: h, k: v, a: logits, lda: v,
                          b: store.values + weight, ldb: h, beta: 0, c: dHPartial + h, ldc: w)
            }
        }
        scatterHiddenGradients(comm, partial: dHPartial, received: dHLocal, rows: rows, localRows: localRows, width: h,
                               withMI: withMI, layout: layout, ce: dHiddenCE, mi: dHiddenMI)
        bytesSentLastStep += 4 * rows * w
        if comm.size == 1 { bytesSentLastStep = 0 }
    }

    public var ownedRows: Int { owned.count }
    public func zeroGrads() { store.zeroGrads() }
    public func gradientSum() -> Double { Kernels.sum(store.grads, count: store.count) }

    /// Dense Adam over the owned rows: every row has a gradient every step.
    public func applyUpdate(lr: Float, beta1: Float, beta2: Float, eps: Float) {
        if adam == nil { adam = Adam(count: store.count, lr: lr, beta1: beta1, beta2: beta2, eps: eps) }
        adam!.update(store.values, grads: store.grads)
    }

    /// `classifier.out.weight` [V, h] and `classifier.out.bias` [V], gathered in label order on rank 0.
    public func gatheredTensors() -> [(name: String, shape: [Int], data: [Float])]? {
        var w = [Float](repeating: 0, count: comm.isRoot ? labels * width : 0)
        var b = [Float](repeating: 0, count: comm.isRoot ? labels : 0)
        w.withUnsafeMutableBufferPointer { wb in
            comm.gatherv(send: UnsafeBufferPointer(start: store.values + weight, count: owned.count * width),
                         receive: wb, counts: partition.rankCounts(width: width), root: 0)
        }
        b.withUnsafeMutableBufferPointer { bb in
            comm.gatherv(send: UnsafeBufferPointer(start: store.values + bias, count: owned.count),
                         receive: bb, counts: partition.rankCounts(width: 1), root: 0)
        }
        guard comm.isRoot else { return nil }
        return [("classifier.out.weight", [labels, width], w), ("classifier.out.bias", [labels], b)]
    }

    public func load(from file: SafeTensorsFile) throws {
        let w = try checkpointTensor(file, "classifier.out.weight", shape: [labels, width])
        let b = try checkpointTensor(file, "classifier.out.bias", shape: [labels])
        for k in 0..<owned.count {
            for j in 0..<width { store.values[weight + k * width + j] = w[(owned.lowerBound + k) * width + j] }
            store.values[bias + k] = b[owned.lowerBound + k]
        }
    }

    /// Floats a replicated V × h layer (plus bias) would allreduce per step instead.
    public var replicatedAllreduceBytes: Int { 4 * labels * (width + 1) }

    /// Bytes this rank holds for the layer: W_r, b_r with gradients and two Adam
    /// moments, plus the per-step logits and probabilities.
    public var memoryBytes: Int { 4 * (4 * owned.count * (width + 1) + 2 * globalRowCapacity * owned.count) }
}
