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
/// fixed order without threads: every rank, at any rank count, computes the
/// same order.
public enum PCALeafOrder {
    /// leafOf[label] for `count` vectors of `dim` floats (row-major).
    public static func leaves(_ vectors: [Float], count: Int, dim: Int) -> [Int32] {
        var x = vectors
        var perm = (0..<count).map { Int32($0) }     // position → label
        var proj = [Float](repeating: 0, count: count)
        var scratchRows = [Float](repeating: 0, count: count * dim)
        var scratchPerm = [Int32](repeating: 0, count: count)
        var mean = [Float](repeating: 0, count: dim), u = [Float](repeating: 0, count: dim), w = [Float](repeating: 0, count: dim)
        var stack = [(0, count)]
        while let (lo, hi) = stack.popLast() {
            let n = hi - lo
            if n < 3 { continue }   // a split of two leaves is fixed by the tree anyway
            x.withUnsafeMutableBufferPointer { xb in
                let block = xb.baseAddress! + lo * dim
                // Mean of the block.
                for j in 0..<dim { mean[j] = 0 }
                for i in 0..<n { for j in 0..<dim { mean[j] += block[i * dim + j] } }
                for j in 0..<dim { mean[j] /= Float(n) }
                // Power iteration on (at most 4096 evenly spaced) centred rows.
                let stride = max(1, n / 4096)
                for j in 0..<dim { u[j] = Float(j % 7) - 3 + 0.5 }
                normalize(&u)
                for _ in 0..<6 {
                    for j in 0..<dim { w[j] = 0 }
                    var i = 0
                    while i < n {
                        let row = block + i * dim
                        var a: Float = 0
                        for j in 0..<dim { a += (row[j] - mean[j]) * u[j] }
                        for j in 0..<dim { w[j] += a * (row[j] - mean[j]) }
                        i += stride
                    }
                    if !normalize(&w) { break }
                    swap(&u, &w)
                }
                for i in 0..<n {
                    let row = block + i * dim
                    var a: Float = 0
                    for j in 0..<dim { a += row[j] * u[j] }
                    proj[lo + i] = a
                }
            }
            // Stable order by projection (ties by label), then move rows and labels.
            let order = (lo..<hi).sorted { proj[$0] != proj[$1] ? proj[$0] < proj[$1] : perm[$0] < perm[$1] }
            for (k, src) in order.enumerated() {
                scratchPerm[lo + k] = perm[src]
                for j in 0..<dim { scratchRows[(lo + k) * dim + j] = x[src * dim + j] }
            }
            for k in lo..<hi {
                perm[k] = scratchPerm[k]
                for j in 0..<dim { x[k * dim + j] = scratchRows[k * dim + j] }
            }
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
