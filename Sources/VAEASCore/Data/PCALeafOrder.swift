import VAEASConfig

/// Leaf order for the hierarchical softmax: which label sits at which leaf.
///
/// A tree over labels in an arbitrary order asks its top nodes to separate
/// arbitrary halves of the training set, a hard function of z that the
/// classifier learns slowly. Ordering the leaves so that labels of similar
/// images share subtrees (Mnih & Hinton 2009 build their trees by recursive
/// clustering the same way) makes the top splits nearly linear.
///
/// `pca`: recursive median split of the labels' mean images along the top
/// principal direction of each block, with the tree's own split sizes (left
/// gets ⌈n/2⌉), so every subtree of the tree is one block. The loops run in a
/// fixed order without threads: the same input gives the same order anywhere.
/// The training run computes it once, on rank 0, and broadcasts the result
/// (`VAEASModel`): V·d floats of means live on one rank only.
///
/// Memory: the vectors are read in place through a position → label
/// permutation (rows are never copied or moved), so beyond its input it
/// needs O(V + d) (at V = 10⁶, d = 784: the 3.1 GB of means, not three copies).
public enum PCALeafOrder {
    /// leafOf[label] for `count` vectors of `dim` floats (row-major).
    public static func leaves(_ vectors: [Float], count: Int, dim: Int) -> [Int32] {
        precondition(vectors.count >= count * dim)
        return vectors.withUnsafeBufferPointer { leaves($0.baseAddress!, count: count, dim: dim) }
    }

    /// The same on a buffer the caller owns.
    public static func leaves(_ x: UnsafePointer<Float>, count: Int, dim: Int) -> [Int32] {
        var perm = (0..<count).map { Int32($0) }     // position → label
        var proj = [Float](repeating: 0, count: count)
        var scratchPerm = [Int32](repeating: 0, count: count)
        var order = [Int](repeating: 0, count: count)
        var mean = [Float](repeating: 0, count: dim), u = [Float](repeating: 0, count: dim), w = [Float](repeating: 0, count: dim)
        var stack = [(0, count)]
        while let (lo, hi) = stack.popLast() {
            let n = hi - lo
            if n < 3 { continue }   // a split of two leaves is fixed by the tree anyway
            perm.withUnsafeBufferPointer { pb in
                // Row i of the block: the vector of the label at position lo + i.
                @inline(__always) func row(_ i: Int) -> UnsafePointer<Float> { x + Int(pb[lo + i]) * dim }
                // Mean of the block.
                for j in 0..<dim { mean[j] = 0 }
                for i in 0..<n { let r = row(i); for j in 0..<dim { mean[j] += r[j] } }
                for j in 0..<dim { mean[j] /= Float(n) }
                // Power iteration on (at most 4096 evenly spaced) centred rows.
                let stride = max(1, n / 4096)
                for j in 0..<dim { u[j] = Float(j % 7) - 3 + 0.5 }
                normalize(&u)
                for _ in 0..<6 {
                    for j in 0..<dim { w[j] = 0 }
                    var i = 0
                    while i < n {
                        let r = row(i)
                        var a: Float = 0
                        for j in 0..<dim { a += (r[j] - mean[j]) * u[j] }
                        for j in 0..<dim { w[j] += a * (r[j] - mean[j]) }
                        i += stride
                    }
                    if !normalize(&w) { break }
                    swap(&u, &w)
                }
                for i in 0..<n {
                    let r = row(i)
                    var a: Float = 0
                    for j in 0..<dim { a += r[j] * u[j] }
                    proj[lo + i] = a
                }
            }
            // Order by projection, ties by label (a total order: the result
            // does not depend on the sort's stability); only labels move.
            for k in lo..<hi { order[k] = k }
            order[lo..<hi].sort { proj[$0] != proj[$1] ? proj[$0] < proj[$1] : perm[$0] < perm[$1] }
            for k in lo..<hi { scratchPerm[k] = perm[order[k]] }
            for k in lo..<hi { perm[k] = scratchPerm[k] }
            let mid = CanonicalTree.split(lo, hi)
            stack.append((mid, hi))
            stack.append((lo, mid))
        }
        var leafOf = [Int32](repeating: 0, count: count)
        for (pos, label) in perm.enumerated() { leafOf[Int(label)] = Int32(pos) }
        return leafOf
    }

    @discardableResult
    static func normalize(_ v: inout [Float]) -> Bool {
        var s: Float = 0
        for a in v { s += a * a }
        guard s > 1e-30 else { return false }
        let inv = 1 / s.squareRoot()
        for j in 0..<v.count { v[j] *= inv }
        return true
    }
}
