import VAEASConfig
import VAEASCore
import SafeTensors
import CKernels
import Dispatch
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
public final class PartitionedSoftmax: PartitionedOutputLayer, RowStorage {
    public var softmax: SoftmaxKind { .full }
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

    /// R × V_r: the logits ℓ = H W_rᵀ + b_r, kept from `forward` for `backward`
    /// (which recomputes p from them instead of storing R × V_r probabilities).
    let logits: UnsafeMutablePointer<Float>
    /// One backward tile of the two logit gradients, stacked: CE in rows
    /// [0, R), Î in rows [R, 2R), `backwardTile` columns each.
    let gradTile: UnsafeMutablePointer<Float>
    /// dH of both terms, stacked the same way (2R × h), before the [CE | Î] interleave.
    let dHStacked: UnsafeMutablePointer<Float>
    let rowMax: UnsafeMutablePointer<Float>     // R: local, then global max m
    let localMax: UnsafeMutablePointer<Float>   // R
    let sumExp: UnsafeMutablePointer<Double>    // R: S, local then global
    let sumExpShifted: UnsafeMutablePointer<Double> // R: A
    let invSum: UnsafeMutablePointer<Float>     // R: 1/S
    let miRow: UnsafeMutablePointer<Float>      // R: Σ p ℓ (entropy) or dĤ/dCE·miScale (ce, fano)
    let sums: UnsafeMutablePointer<Float>       // 3R: S, A, ℓ_e − m
    /// Per global row (identical on every rank after `forward`).
    public let crossEntropy: UnsafeMutablePointer<Double>
    public let entropy: UnsafeMutablePointer<Double>
    public var rows: Int { rowGather.rows }
    private let arena = Arena()
    var adam: Adam?
    public private(set) var bytesSentLastStep = 0
    /// What `store.grads` holds: `.cleared` after `zeroGrads` (notionally zero;
    /// the memory is cleared only if something reads it before a backward,
    /// since `backward` writes rather than adds); `.written(bound)` after a
    /// backward, with a finite bound on the gradients' magnitudes when that
    /// backward proved them finite (nil: not proved, sum them to check).
    enum GradientState { case cleared, written(bound: Double?) }
    private(set) var gradientState = GradientState.cleared

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
        gradTile = arena.floats(Self.gradTileFloats(globalRows: r))
        dHStacked = arena.floats(2 * r * width)
        rowMax = arena.floats(r)
        localMax = arena.floats(r)
        sumExp = arena.doubles(r)
        sumExpShifted = arena.doubles(r)
        invSum = arena.floats(r)
        miRow = arena.floats(r)
        sums = arena.floats(3 * r)
        crossEntropy = arena.doubles(r)
        entropy = arena.doubles(r)
    }

    /// Columns of a forward tile for R rows: the R × T logits about 512 KiB,
    /// so the two passes after its product read it from L2, not memory.
    static func forwardTile(rows: Int) -> Int { max(64, min(4096, (131_072 / max(rows, 1)) & ~15)) }
    /// Columns of a backward tile: ℓ (R × T) and the stacked gradients (2R × T) about 768 KiB.
    static func backwardTile(rows: Int) -> Int { max(64, min(4096, (65_536 / max(rows, 1)) & ~15)) }
    /// Floats of `gradTile` for up to `globalRows` rows (R·T ≤ max(65536, 64R)).
    static func gradTileFloats(globalRows r: Int) -> Int { 2 * max(65_536, 64 * r) }

    public func initialize(rng: Philox, scheme: Initialization) {
        for k in 0..<owned.count {
            initializeRow(store.values + weight + k * width, bias: store.values + bias + k, width: width, fanOut: labels,
                          rng: rng, tensorID: InitStream.classifierOut, id: owned.lowerBound + k, scheme: scheme)
        }
    }

    /// Steps 1–5. Fills `crossEntropy` and `entropy` per global row.
    ///
    /// Steps 2–3 run tile by tile over the owned columns: the tile's product
    /// (b_r copied in first, β = 1), then `ckc_softmax_tile_stats` reads the
    /// tile twice while it is in cache, for the running max and the online
    /// S and A (rescaled when a later tile raises the max). After the
    /// allreduce-MAX only per-row numbers change: S ← S·e^{m_r − m},
    /// A ← e^{m_r − m}(A + (m_r − m)S). So the logits are written once (by
    /// their product) and no other pass over R × V_r is made.
    public func forward(hLocal: UnsafePointer<Float>, localRows: Int, targets rowLabels: UnsafeBufferPointer<Int32>,
                        batch: Int, samples: Int) {
        rowGather.forward(hLocal, localRows: localRows, targets: rowLabels, batch: batch, samples: samples)
        let rows = rowGather.rows, targets = rowGather.targets
        let h = width, v = owned.count, lo = owned.lowerBound
        let hFull = rowGather.hidden
        let b = store.values + bias, w = store.values + weight
        let logits = self.logits, rowMax = self.rowMax, sumExp = self.sumExp, sumExpShifted = self.sumExpShifted
        for r in 0..<rows { rowMax[r] = -.greatestFiniteMagnitude; sumExp[r] = 0; sumExpShifted[r] = 0 }
        let tile = Self.forwardTile(rows: rows)
        var c0 = 0
        while c0 < v {
            let tc = min(tile, v - c0)
            // ℓ = b_r + H W_rᵀ on columns [c0, c0 + tc)
            for r in 0..<rows { (logits + r * v + c0).update(from: b + c0, count: tc) }
            BLAS.gemm(transA: false, transB: true, m: rows, n: tc, k: h, a: hFull, lda: h,
                      b: w + c0 * h, ldb: h, beta: 1, c: logits + c0, ldc: v)
            Parallel.chunks(rows, grain: max(1, 16_384 / tc)) { rr in
                ckc_softmax_tile_stats(logits + rr.lowerBound * v + c0, v, rr.count, tc, rowMax + rr.lowerBound,
                                       sumExp + rr.lowerBound, sumExpShifted + rr.lowerBound)
            }
            c0 += tc
        }
        localMax.update(from: rowMax, count: rows)
        comm.allreduceMax(UnsafeMutableBufferPointer(start: rowMax, count: rows))
        for r in 0..<rows {
            let m = rowMax[r]
            let delta = Double(localMax[r]) - Double(m), f = exp(delta)
            let s = f * sumExp[r], a = f * (sumExpShifted[r] + delta * sumExp[r])
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
            invSum[r] = Float(1 / s)
        }
        bytesSentLastStep = rowGather.bytesSent + (comm.size > 1 ? 4 * (rows + 3 * rows) : 0)
    }

    @inline(__always)
    public func hHat(_ r: Int, _ estimator: MIEstimator) -> Double {
        Estimators.hHat(estimator, crossEntropy: crossEntropy[r], entropy: entropy[r], labels: labels)
    }

    /// Step 6, tile by tile over the owned columns, each tile while in cache:
    /// 1. `ckc_softmax_tile_grad`: p = e^{ℓ−m}/S recomputed from the kept
    ///    logits, the CE gradient ceScale·(p − onehot) and the Î gradient
    ///    (eq. 13's −p(ℓ − Σpℓ), or dĤ/dCE·(p − onehot)) written into the
    ///    stacked tile, the bias gradient Σ_r written into `grads`, and Σ|dℓ|;
    /// 2. dW_r rows of the tile = dℓ_CEᵀ H, written (β = 0) after `zeroGrads`;
    /// 3. [dH_CE; dH_Î] += [dℓ_CE; dℓ_Î] W_r rows of the tile (one product for both).
    /// The one pass over R × V_r in memory is step 1's read of ℓ. Since
    /// |dW_jk| ≤ Σ_r |dℓ_rj|·|H_rk| ≤ Σ|dℓ|·Σ|H| and |db_j| ≤ Σ|dℓ|, a finite,
    /// moderate Σ|dℓ|·(Σ|H| + 1) proves every gradient of the layer finite:
    /// `gradientCheck` then needs no pass over them.
    public func backward(ceScale: Float, miScale: Float, estimator: MIEstimator) {
        let h = width, v = owned.count, lo = owned.lowerBound, rows = self.rows, targets = rowGather.targets
        let withMI = miScale != 0
        let hFull = rowGather.hidden
        let fresh: Bool
        if case .cleared = gradientState { fresh = true } else { fresh = false }
        var miKind: Int32 = 0
        if withMI {
            switch estimator {
            case .entropy:
                // dH/dℓ_j = −p_j (ℓ_j − Σ p ℓ), with Σ p ℓ = m + A/S
                miKind = 1
                for r in 0..<rows { miRow[r] = rowMax[r] + Float(Double(sums[rows + r]) / Double(sums[r])) }
            case .ce, .fano:
                // Ĥ is a function of CE alone: dĤ/dℓ_j = dĤ/dCE · (p_j − δ_je).
                miKind = 2
                for r in 0..<rows {
                    miRow[r] = Float(Estimators.hHatSlope(estimator, crossEntropy: crossEntropy[r], labels: labels)) * miScale
                }
            }
        }
        let gW = store.grads + weight, gb = store.grads + bias, w = store.values + weight
        let logits = self.logits, rowMax = self.rowMax, invSum = self.invSum, miRow = self.miRow
        let gradTile = self.gradTile
        let stacked = withMI ? 2 * rows : rows
        let tile = Self.backwardTile(rows: rows)
        var absGrad = 0.0
        var c0 = 0
        while c0 < v {
            let tc = min(tile, v - c0)
            let gce = gradTile, gmi = gradTile + rows * tc
            let parts = max(1, min(BLAS.threads, tc / max(16, 16_384 / max(rows, 1))))
            withUnsafeTemporaryAllocation(of: Double.self, capacity: parts) { partial in
                partial.initialize(repeating: 0)
                let size = ((tc + parts - 1) / parts + 15) & ~15
                let body: (Int) -> Void = { k in
                    let a = min(k * size, tc), z = min(a + size, tc)
                    guard a < z else { return }
                    partial[k] = ckc_softmax_tile_grad(
                        logits + c0 + a, v, rows, z - a, rowMax, invSum, targets, lo + c0 + a,
                        ceScale, gce + a, tc, miKind, miRow, miScale, gmi + a, tc, gb + c0 + a, fresh ? 0 : 1)
                }
                if parts == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: body) }
                for k in 0..<parts { absGrad += partial[k] }
            }
            BLAS.gemm(transA: true, transB: false, m: tc, n: h, k: rows, a: gce, lda: tc,
                      b: hFull, ldb: h, beta: fresh ? 0 : 1, c: gW + c0 * h, ldc: h)
            BLAS.gemm(transA: false, transB: false, m: stacked, n: h, k: tc, a: gradTile, lda: tc,
                      b: w + c0 * h, ldb: h, beta: c0 == 0 ? 0 : 1, c: dHStacked, ldc: h)
            c0 += tc
        }
        // dH partial sums, [CE | Î] side by side so one reduce-scatter carries both.
        let cols = rowGather.columns(withMI: withMI)
        let dHPartial = rowGather.partial
        if v == 0 {
            dHPartial.update(repeating: 0, count: rows * cols)
        } else {
            for r in 0..<rows {
                (dHPartial + r * cols).update(from: dHStacked + r * h, count: h)
                if withMI { (dHPartial + r * cols + h).update(from: dHStacked + (rows + r) * h, count: h) }
            }
        }
        if fresh {
            let bound = absGrad * (ckc_abs_sum(hFull, rows * h) + 1)
            gradientState = .written(bound: bound.isFinite && bound < 1e30 ? bound : nil)
        } else {
            gradientState = .written(bound: nil)
        }
        rowGather.backward(withMI: withMI)
        bytesSentLastStep = rowGather.bytesSent + (comm.size > 1 ? 4 * (rows + 3 * rows) : 0)
    }

    public var ownedRows: Int { owned.count }
    public var globalRows: [Int] { Array(owned) }
    public var rowsToSave: Range<Int> { 0..<owned.count }
    /// Marks the gradients zero without a pass over them: the next `backward` writes them.
    public func zeroGrads() { gradientState = .cleared }
    /// The gradients read as zero until the next backward writes them.
    private func materializeCleared() {
        if case .cleared = gradientState {
            store.zeroGrads()
            gradientState = .written(bound: 0)
        }
    }

    /// Finite iff every gradient of the owned rows is: the bound `backward`
    /// proved (no pass), else their sum.
    public func gradientCheck() -> Double {
        switch gradientState {
        case .cleared: return 0
        case .written(let bound?): return bound
        case .written(nil): return Kernels.sum(store.grads, count: store.count)
        }
    }

    /// Dense Adam over the owned rows (every row has a gradient every step):
    /// `Adam.update`'s fused pass over the whole store, with the step's scalars.
    public func applyUpdate(lr: Float, beta1: Float, beta2: Float, eps: Float) {
        materializeCleared()
        if adam == nil { adam = Adam(count: store.count, lr: lr, beta1: beta1, beta2: beta2, eps: eps) }
        let adam = self.adam!
        adam.lr = lr   // a schedule may change it between steps
        // The dense step's scalars: the same bias-corrected t as every step's.
        adam.update(store.values, grads: store.grads, range: 0..<store.count, adam.beginSparseStep())
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
        let w = try file.checkpointFloats("classifier.out.weight", shape: [labels, width])
        let b = try file.checkpointFloats("classifier.out.bias", shape: [labels])
        for k in 0..<owned.count {
            for j in 0..<width { store.values[weight + k * width + j] = w[(owned.lowerBound + k) * width + j] }
            store.values[bias + k] = b[owned.lowerBound + k]
        }
    }

    public func shardState() -> RowShardState { rowShardState() }
    public func loadShardState(_ saved: SavedRows, adamStep: Int, lr: Float, beta1: Float, beta2: Float, eps: Float) throws {
        try loadRowShard(saved, adamStep: adamStep, lr: lr, beta1: beta1, beta2: beta2, eps: eps)
    }
    public func uniqueGradientSquares() -> Double {
        materializeCleared()
        return rowGradientSquares()
    }

    /// Bytes this rank holds for the layer: W_r, b_r with gradients and two Adam
    /// moments, the kept logits (R × V_r), one backward tile and dH.
    public var memoryBytes: Int { Self.memoryBytes(rows: owned.count, width: width, globalRows: globalRowCapacity) }

    /// The same for `rows` owned label rows and `globalRows` batch rows, without building the layer (`--dry-run`).
    public static func memoryBytes(rows: Int, width: Int, globalRows: Int) -> Int {
        4 * (4 * rows * (width + 1) + globalRows * rows + gradTileFloats(globalRows: globalRows) + 2 * globalRows * width)
    }
}
