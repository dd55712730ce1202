import Foundation
import SafeTensors
import VAEASCore
import VAEASDistributed

/// The partitioned output layer in a training-state checkpoint: the layer
/// saves and loads its own rows (`PartitionedOutputLayer.shardState`,
/// `loadShardState`); this file only turns them into shard files and back,
/// addressed by global row id (label, or tree node in preorder), so a
/// checkpoint written at P ranks loads at any P.
extension TrainingCheckpoint {

    /// This rank's rows of the layer (weights, biases and both Adam moments) as
    /// safetensors bytes, with their global row ranges and the layer's Adam step.
    static func shardBytes(_ layer: PartitionedOutputLayer, rank: Int) throws -> (bytes: [UInt8], rows: [[Int]], adamStep: Int) {
        let state = layer.shardState()
        var w = SafeTensorsWriter()
        for t in state.tensors { try w.add(t.name, shape: t.shape, data: t.data) }
        w.metadata = ["rank": "\(rank)"]
        return (w.serialized(), state.rows, state.adamStep)
    }

    /// Every rank's global row ranges, on rank 0 (nil elsewhere). Collective.
    static func gatherRows(_ rows: [[Int]], comm: Communicator) throws -> [[[Int]]]? {
        let bytes = [UInt8](try JSONEncoder().encode(rows))
        guard let all = comm.gather(bytes: bytes, root: 0) else { return nil }
        return try all.map { try JSONDecoder().decode([[Int]].self, from: Data($0)) }
    }

    /// The rows of a checkpoint's shards, each shard file read once when first needed.
    final class ShardFiles: SavedRows {
        let dir: String
        let manifest: StateManifest
        /// Where each global row sits: shard and position in its storage order.
        private var location: [Int: (shard: Int, index: Int)] = [:]
        private var files: [Int: [String: [Float]]] = [:]

        init(dir: String, manifest: StateManifest) {
            self.dir = dir
            self.manifest = manifest
            for (s, shard) in manifest.shards.enumerated() {
                var k = 0
                for r in shard.rows { for id in r[0]..<r[1] { location[id] = (s, k); k += 1 } }
            }
        }

        func row(_ id: Int) throws -> (tensors: [String: [Float]], index: Int) {
            guard let at = location[id] else {
                throw CheckpointError(path: dir, message: "no shard holds row \(id) of the output layer")
            }
            if let t = files[at.shard] { return (t, at.index) }
            let file = try SafeTensorsFile.load(path: dir + "/" + manifest.shards[at.shard].file)
            var t: [String: [Float]] = [:]
            for name in RowShardState.tensorNames {
                guard file.names.contains(name) else { throw CheckpointError(path: file.path, message: "missing tensor '\(name)'") }
                t[name] = try file.floats(name)
            }
            files[at.shard] = t
            return (t, at.index)
        }
    }

    static func restoreShard(_ layer: PartitionedOutputLayer, dir: String, manifest: StateManifest,
                             settings: OptimizerSettings) throws {
        guard manifest.labels == layer.labels, manifest.width == layer.width,
              manifest.softmax == layer.softmax.rawValue else {
            throw CheckpointError(path: dir, message: "the checkpoint's output layer (V = \(manifest.labels ?? 0), h = \(manifest.width ?? 0), \(manifest.softmax ?? "none")) does not match the model's")
        }
        try layer.loadShardState(ShardFiles(dir: dir, manifest: manifest), adamStep: manifest.outputAdamStep ?? 0,
                                 lr: settings.lr, beta1: settings.beta1, beta2: settings.beta2, eps: settings.eps)
    }
}
