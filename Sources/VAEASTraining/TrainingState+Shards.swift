import Foundation
import SafeTensors
import VAEASCore
import VAEASDistributed

/// The partitioned output layer in a training-state checkpoint: each rank's
/// rows with their Adam moments, addressed by global row id (label, or tree
/// node in preorder), so a checkpoint written at P ranks loads at any P.
extension TrainingCheckpoint {

    /// This rank's rows of the layer (weights, biases and both Adam moments) as safetensors bytes.
    static func shardBytes(_ layer: PartitionedOutputLayer, rank: Int) throws -> ([UInt8], [[Int]]) {
        let rows = layer.rowsToSave, h = layer.width, ids = layer.globalRows
        let store = layer.store
        var w = SafeTensorsWriter()
        let count = store.count
        let zeros = [Float](repeating: 0, count: count)
        let m = layer.optimizer.map { Array(UnsafeBufferPointer(start: $0.m, count: count)) } ?? zeros
        let v = layer.optimizer.map { Array(UnsafeBufferPointer(start: $0.v, count: count)) } ?? zeros
        func rowsOf(_ buffer: UnsafePointer<Float>) -> ([Float], [Float]) {
            var weights: [Float] = [], biases: [Float] = []
            weights.reserveCapacity(rows.count * h)
            for k in rows {
                weights.append(contentsOf: UnsafeBufferPointer(start: buffer + layer.weightOffset + k * h, count: h))
                biases.append(buffer[layer.biasOffset + k])
            }
            return (weights, biases)
        }
        let (pw, pb) = rowsOf(store.values)
        let (mw, mb) = m.withUnsafeBufferPointer { rowsOf($0.baseAddress!) }
        let (vw, vb) = v.withUnsafeBufferPointer { rowsOf($0.baseAddress!) }
        for (name, data, shape) in [("weight", pw, [rows.count, h]), ("bias", pb, [rows.count]),
                                    ("weight.exp_avg", mw, [rows.count, h]), ("bias.exp_avg", mb, [rows.count]),
                                    ("weight.exp_avg_sq", vw, [rows.count, h]), ("bias.exp_avg_sq", vb, [rows.count])] {
            try w.add(name, shape: shape, data: data)
        }
        w.metadata = ["rank": "\(rank)"]
        return (w.serialized(), ranges(rows.map { ids[$0] }))
    }

    /// The global row ranges rank r of P saves (computed on rank 0 from the layer's type).
    static func rowRanges(_ layer: PartitionedOutputLayer, rank r: Int, ranks: Int) -> [[Int]] {
        switch layer {
        case let full as PartitionedSoftmax:
            let range = BlockPartition(total: full.labels, parts: ranks).range(r)
            return range.isEmpty ? [] : [[range.lowerBound, range.upperBound]]
        case let tree as PartitionedTreeSoftmax:
            let part = TreePartition(labels: tree.labels, ranks: ranks, rank: r)
            let nodes = part.ownedNodes.sorted { $0.row < $1.row }.filter { r == 0 || $0.row >= part.topCount }
            return ranges(nodes.map(\.id))
        default:
            preconditionFailure("unknown output layer")
        }
    }

    /// Consecutive ids as [lo, hi) ranges, in order.
    static func ranges(_ ids: [Int]) -> [[Int]] {
        var out: [[Int]] = []
        for id in ids {
            if let last = out.last, last[1] == id { out[out.count - 1][1] = id + 1 } else { out.append([id, id + 1]) }
        }
        return out
    }

    static func restoreShard(_ layer: PartitionedOutputLayer, dir: String, manifest: StateManifest,
                             settings: OptimizerSettings) throws {
        guard manifest.labels == layer.labels, manifest.width == layer.width,
              manifest.softmax == layer.softmax.rawValue else {
            throw CheckpointError(path: dir, message: "the checkpoint's output layer (V = \(manifest.labels ?? 0), h = \(manifest.width ?? 0), \(manifest.softmax ?? "none")) does not match the model's")
        }
        // Where each global row sits: shard and position in its storage order.
        var location: [Int: (shard: Int, index: Int)] = [:]
        for (s, shard) in manifest.shards.enumerated() {
            var k = 0
            for r in shard.rows { for id in r[0]..<r[1] { location[id] = (s, k); k += 1 } }
        }
        var files: [Int: [String: [Float]]] = [:]
        func load(_ s: Int) throws -> [String: [Float]] {
            if let f = files[s] { return f }
            let file = try SafeTensorsFile.load(path: dir + "/" + manifest.shards[s].file)
            var t: [String: [Float]] = [:]
            for name in ["weight", "bias", "weight.exp_avg", "bias.exp_avg", "weight.exp_avg_sq", "bias.exp_avg_sq"] {
                guard file.names.contains(name) else { throw CheckpointError(path: file.path, message: "missing tensor '\(name)'") }
                t[name] = try file.floats(name)
            }
            files[s] = t
            return t
        }
        let h = layer.width, store = layer.store
        var m = [Float](repeating: 0, count: store.count), v = m
        for (k, id) in layer.globalRows.enumerated() {
            guard let at = location[id] else {
                throw CheckpointError(path: dir, message: "no shard holds row \(id) of the output layer")
            }
            let t = try load(at.shard)
            let src = (at.index * h)..<((at.index + 1) * h), dst = (layer.weightOffset + k * h)..<(layer.weightOffset + (k + 1) * h)
            t["weight"]![src].withUnsafeBufferPointer { store.values.advanced(by: dst.lowerBound).update(from: $0.baseAddress!, count: h) }
            store.values[layer.biasOffset + k] = t["bias"]![at.index]
            m.replaceSubrange(dst, with: t["weight.exp_avg"]![src])
            v.replaceSubrange(dst, with: t["weight.exp_avg_sq"]![src])
            m[layer.biasOffset + k] = t["bias.exp_avg"]![at.index]
            v[layer.biasOffset + k] = t["bias.exp_avg_sq"]![at.index]
        }
        if let adamStep = manifest.outputAdamStep, adamStep > 0 {
            layer.restoreOptimizer(step: adamStep, m: m, v: v, lr: settings.lr, beta1: settings.beta1, beta2: settings.beta2,
                                   eps: settings.eps)
        }
    }
}
