import VAEASConfig
import VAEASCore
import SafeTensors
#if canImport(Glibc)
import Glibc
#endif

/// The classifier's V-way output layer, partitioned by label rows across ranks
/// (design doc, "The partitioned output layer"; Megatron-LM's
/// vocabulary-parallel cross entropy).
///
/// Rank r owns rows [⌊V·r/P⌋, ⌊V·(r+1)/P⌋) of W (V × h) and b, with their
/// gradients and Adam moments; no rank holds all V rows. One step:
/// 1. `RowGather.forward`: allgather the local hidden rows → H (R × h), all R = B·L global rows;
/// 2. local logits ℓ_r = H W_rᵀ + b_r;
/// 3. allreduce-MAX of each row's local max m;
/// 4–5. one allreduce-SUM of [S = Σ e^{ℓ−m}, A = Σ e^{ℓ−m}(ℓ−m), ℓ_e − m] (3R floats),
///    from which `Estimators` gives CE (eq. 12) and the entropy (eq. 13) on every rank;
/// 6. local gradients wrt the owned rows, and dH = Σ_r dℓ_r W_r, returned to
///    the ranks that own the hidden rows by `RowGather.backward` (reduce-scatter).
/// Communication per step is O(R·h + R) floats whatever V is.
public final class PartitionedSoftmax: PartitionedOutputLayer {
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
    public let rowGather: RowGather

    let logits: UnsafeMutablePointer<Float>     // R × V_r; becomes the Î gradient
    let probs: UnsafeMutablePointer<Float>      // R × V_r; becomes the CE gradient
    let rowMax: UnsafeMutablePointer<Float>     // R
    let sums: UnsafeMutablePointer<Float>       // 3R: S, A, ℓ_e − m
    /// Per global row (identical on every rank after `forward`).
    public let crossEntropy: UnsafeMutablePointer<Double>
    public let entropy: UnsafeMutablePointer<Double>
    public var rows: Int { rowGather.rows }
    private let arena = Arena()
    private var adam: Adam?
    public var optimizer: Adam? { adam }
    public var weightOffset: Int { weight }
    public var biasOffset: Int { bias }
    public private(set) var bytesSentLastStep = 0

    public init(labels: Int, width: Int, comm: Communicator, globalRowCapacity: Int, localRowCapacity: Int) {
        precondition(labels >= 1 && width >= 1)
        self.labels = labels
        self.width = width
        self.comm = comm
        partition = BlockPartition(total: labels, parts: comm.size)
        owned = partition.range(comm.rank)
        self.globalRowCapacity = globalRowCapacity
        let store = ParameterStore()
        weight = store.register("classifier.out.weight", shape: [owned.count, width])
        bias = store.register("classifier.out.bias", shape: [owned.count])
        store.allocate()
        self.store = store
        rowGather = RowGather(comm: comm, width: width, globalRowCapacity: globalRowCapacity, localRowCapacity: localRowCapacity)
        let r = globalRowCapacity, v = max(owned.count, 1)
        logits = arena.floats(r * v)
        probs = arena.floats(r * v)
        rowMax = arena.floats(r)
        sums = arena.floats(3 * r)
        crossEntropy = arena.doubles(r)
        entropy = arena.doubles(r)
    }

    public func initialize(rng: Philox, scheme: Initialization) {
        for k in 0..<owned.count {
            initializeRow(store.values + weight + k * width, bias: store.values + bias + k, width: width, fanOut: labels,
                          rng: rng, tensorID: InitStream.classifierOut, id: owned.lowerBound + k, scheme: scheme)
        }
    }

    /// Steps 1–5. Fills `crossEntropy` and `entropy` per global row.
    public func forward(hLocal: UnsafePointer<Float>, localRows: Int, targets rowLabels: UnsafeBufferPointer<Int32>,
                        batch: Int, samples: Int) {
        rowGather.forward(hLocal, localRows: localRows, targets: rowLabels, batch: batch, samples: samples)
        let rows = rowGather.rows, targets = rowGather.targets
        let h = width, v = owned.count, lo = owned.lowerBound
        let hFull = rowGather.hidden
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
            crossEntropy[r] = Estimators.crossEntropy(logSumExp: logS, shiftedTargetLogit: Double(sums[2 * rows + r]))
            entropy[r] = Estimators.entropy(logSumExp: logS, sumExp: s, sumExpShifted: Double(sums[rows + r]))
            let inv = Float(1 / s)
            let p = probs + r * v
            for j in 0..<v { p[j] *= inv }
        }
        bytesSentLastStep = rowGather.bytesSent + (comm.size > 1 ? 4 * (rows + 3 * rows) : 0)
    }

    @inline(__always)
    public func hHat(_ r: Int, _ estimator: MIEstimator) -> Double {
        Estimators.hHat(estimator, crossEntropy: crossEntropy[r], entropy: entropy[r], labels: labels)
    }

    /// Step 6.
    public func backward(ceScale: Float, miScale: Float, estimator: MIEstimator) {
        let h = width, v = owned.count, lo = owned.lowerBound, rows = self.rows, targets = rowGather.targets
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
                    let coef = Float(Estimators.hHatSlope(estimator, crossEntropy: crossEntropy[r], labels: labels)) * miScale
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
        let hFull = rowGather.hidden
        let gW = store.grads + weight, gb = store.grads + bias
        BLAS.gemm(transA: true, transB: false, m: v, n: h, k: rows, a: probs, lda: max(v, 1),
                  b: hFull, ldb: h, beta: 1, c: gW, ldc: h)
        for r in 0..<rows {
            let p = probs + r * v
            for j in 0..<v { gb[j] += p[j] }
        }
        // dH partial sums, [CE | Î] side by side so one reduce-scatter carries both.
        let w = rowGather.columns(withMI: withMI)
        let dHPartial = rowGather.partial
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
        rowGather.backward(withMI: withMI)
        bytesSentLastStep = rowGather.bytesSent + (comm.size > 1 ? 4 * (rows + 3 * rows) : 0)
    }

    public var ownedRows: Int { owned.count }
    public var globalRows: [Int] { Array(owned) }
    public func zeroGrads() { store.zeroGrads() }
    public func gradientSum() -> Double { Kernels.sum(store.grads, count: store.count) }

    /// Dense Adam over the owned rows: every row has a gradient every step.
    public func applyUpdate(lr: Float, beta1: Float, beta2: Float, eps: Float) {
        if adam == nil { adam = Adam(count: store.count, lr: lr, beta1: beta1, beta2: beta2, eps: eps) }
        adam!.lr = lr   // a schedule may change it between steps
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
    public func restoreOptimizer(step: Int, m: UnsafePointer<Float>, v: UnsafePointer<Float>, lr: Float, beta1: Float,
                                 beta2: Float, eps: Float) {
        let a = Adam(count: store.count, lr: lr, beta1: beta1, beta2: beta2, eps: eps)
        a.restore(step: step, m: m, v: v)
        adam = a
    }

    public var memoryBytes: Int { Self.memoryBytes(rows: owned.count, width: width, globalRows: globalRowCapacity) }

    /// The same for `rows` owned label rows and `globalRows` batch rows, without building the layer (`--dry-run`).
    public static func memoryBytes(rows: Int, width: Int, globalRows: Int) -> Int {
        4 * (4 * rows * (width + 1) + 2 * globalRows * rows)
    }
}
