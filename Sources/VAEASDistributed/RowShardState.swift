import VAEASCore

/// A partitioned layer's part of a training-state checkpoint: this rank's
/// rows, each with its Adam moments, addressed by global row id (label, or
/// tree node in preorder), so that what P ranks saved loads at any P.
public struct RowShardState {
    /// The tensor names of a shard: weights [n, h], biases [n], and both moments of each.
    public static let tensorNames = ["weight", "bias", "weight.exp_avg", "bias.exp_avg", "weight.exp_avg_sq", "bias.exp_avg_sq"]
    /// `tensorNames` in order, n the rows saved.
    public var tensors: [(name: String, shape: [Int], data: [Float])]
    /// The global id of each saved row, in order, as [lo, hi) ranges.
    public var rows: [[Int]]
    /// The layer's Adam step (0: no update yet).
    public var adamStep: Int

    /// Consecutive ids as [lo, hi) ranges, in order.
    public static func ranges(_ ids: [Int]) -> [[Int]] {
        var out: [[Int]] = []
        for id in ids {
            if let last = out.last, last[1] == id { out[out.count - 1][1] = id + 1 } else { out.append([id, id + 1]) }
        }
        return out
    }
}

/// Rows saved by the ranks of a checkpoint, found by global row id.
public protocol SavedRows {
    /// The tensors (`RowShardState.tensorNames`) of the shard holding global row
    /// `id`, and the row's index in them.
    func row(_ id: Int) throws -> (tensors: [String: [Float]], index: Int)
}

/// What `shardState` and `loadShardState` need of a layer's storage: row k's
/// weight (h floats) and bias at `store` offsets `weight + k·h` and `bias + k`,
/// the global id of each local row, and the local rows this rank saves.
protocol RowStorage: AnyObject {
    var store: ParameterStore { get }
    var width: Int { get }
    var weight: Int { get }
    var bias: Int { get }
    var adam: Adam? { get set }
    /// The global row of each local row, in local order.
    var globalRows: [Int] { get }
    /// Local rows this rank saves (the tree's replicated top only on rank 0, so each global row is saved once).
    var rowsToSave: Range<Int> { get }
}

extension RowStorage {
    func rowShardState() -> RowShardState {
        let rows = rowsToSave, h = width
        /// The saved rows of `buffer` (nil: the moments before the first update, zero).
        func rowsOf(_ buffer: UnsafePointer<Float>?) -> ([Float], [Float]) {
            guard let buffer else { return ([Float](repeating: 0, count: rows.count * h), [Float](repeating: 0, count: rows.count)) }
            var weights: [Float] = [], biases: [Float] = []
            weights.reserveCapacity(rows.count * h)
            for k in rows {
                weights.append(contentsOf: UnsafeBufferPointer(start: buffer + weight + k * h, count: h))
                biases.append(buffer[bias + k])
            }
            return (weights, biases)
        }
        let (pw, pb) = rowsOf(store.values)
        let (mw, mb) = rowsOf(adam.map { UnsafePointer($0.m) })
        let (vw, vb) = rowsOf(adam.map { UnsafePointer($0.v) })
        let n = rows.count
        let ids = globalRows
        return RowShardState(tensors: [("weight", [n, h], pw), ("bias", [n], pb), ("weight.exp_avg", [n, h], mw),
                                       ("bias.exp_avg", [n], mb), ("weight.exp_avg_sq", [n, h], vw), ("bias.exp_avg_sq", [n], vb)],
                             rows: RowShardState.ranges(rows.map { ids[$0] }), adamStep: adam?.step ?? 0)
    }

    func loadRowShard(_ saved: SavedRows, adamStep: Int, lr: Float, beta1: Float, beta2: Float, eps: Float) throws {
        let h = width
        var m = [Float](repeating: 0, count: store.count), v = m
        for (k, id) in globalRows.enumerated() {
            let (t, i) = try saved.row(id)
            let src = (i * h)..<((i + 1) * h), dst = (weight + k * h)..<(weight + (k + 1) * h)
            t["weight"]![src].withUnsafeBufferPointer { store.values.advanced(by: dst.lowerBound).update(from: $0.baseAddress!, count: h) }
            store.values[bias + k] = t["bias"]![i]
            m.replaceSubrange(dst, with: t["weight.exp_avg"]![src])
            v.replaceSubrange(dst, with: t["weight.exp_avg_sq"]![src])
            m[bias + k] = t["bias.exp_avg"]![i]
            v[bias + k] = t["bias.exp_avg_sq"]![i]
        }
        if adamStep > 0 {
            let a = Adam(count: store.count, lr: lr, beta1: beta1, beta2: beta2, eps: eps)
            a.restore(step: adamStep, m: m, v: v)
            adam = a
        }
    }

    func rowGradientSquares() -> Double {
        let rows = rowsToSave, h = width
        guard !rows.isEmpty else { return 0 }
        return Kernels.sumOfSquares(store.grads + weight + rows.lowerBound * h, count: rows.count * h)
            + Kernels.sumOfSquares(store.grads + bias + rows.lowerBound, count: rows.count)
    }
}
