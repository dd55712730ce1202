import SafeTensors
import VAEASCore

/// The tree in the checkpoint: every node in preorder, whatever the partition.
extension PartitionedTreeSoftmax {
    /// `classifier.tree.weight` [V − 1, h] and `classifier.tree.bias` [V − 1]
    /// in preorder, assembled on rank 0 from the replicated top (rank 0's copy)
    /// and every rank's units.
    public func gatheredTensors() -> [(name: String, shape: [Int], data: [Float])]? {
        let h = width
        let perRank = partition.unitNodesPerRank
        let ownedNodes = nodeCount - topCount
        var gw = [Float](repeating: 0, count: comm.isRoot ? perRank.reduce(0, +) * h : 0)
        var gb = [Float](repeating: 0, count: comm.isRoot ? perRank.reduce(0, +) : 0)
        gw.withUnsafeMutableBufferPointer { buf in
            comm.gatherv(send: UnsafeBufferPointer(start: store.values + weight + topCount * h, count: ownedNodes * h),
                         receive: buf, counts: RankCounts(perRank.map { $0 * h }), root: 0)
        }
        gb.withUnsafeMutableBufferPointer { buf in
            comm.gatherv(send: UnsafeBufferPointer(start: store.values + bias + topCount, count: ownedNodes),
                         receive: buf, counts: RankCounts(perRank), root: 0)
        }
        guard comm.isRoot else { return nil }
        let n = labels - 1
        var w = [Float](repeating: 0, count: n * h), b = [Float](repeating: 0, count: n)
        for (k, id) in partition.topIDs.enumerated() {
            for j in 0..<h { w[id * h + j] = store.values[weight + k * h + j] }
            b[id] = store.values[bias + k]
        }
        // The gathered units arrive in unit order, each a contiguous preorder block.
        var offset = 0
        for u in partition.units {
            let size = u.nodes
            for k in 0..<size {
                for j in 0..<h { w[(u.root + k) * h + j] = gw[(offset + k) * h + j] }
                b[u.root + k] = gb[offset + k]
            }
            offset += size
        }
        return [("classifier.tree.weight", [n, h], w), ("classifier.tree.bias", [n], b)]
    }

    public func load(from file: SafeTensorsFile) throws {
        let h = width
        let w = try file.checkpointFloats("classifier.tree.weight", shape: [labels - 1, h])
        let b = try file.checkpointFloats("classifier.tree.bias", shape: [labels - 1])
        func copy(_ row: Int, _ id: Int) {
            for j in 0..<h { store.values[weight + row * h + j] = w[id * h + j] }
            store.values[bias + row] = b[id]
        }
        for node in partition.ownedNodes { copy(node.row, node.id) }
    }
}
