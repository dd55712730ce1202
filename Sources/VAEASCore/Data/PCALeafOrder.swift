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

    /// The same on a buffer the caller owns. Raw pointers throughout (no
    /// bounds or exclusivity checks in the O(V·d) loops); the elementwise
    /// loops (mean, w) may be vectorised across j, which reorders nothing;
    /// the dot products stay sequential sums over j, as they always were.
    public static func leaves(_ x: UnsafePointer<Float>, count: Int, dim: Int) -> [Int32] {
        let perm = UnsafeMutablePointer<Int32>.allocate(capacity: max(count, 1))   // position → label
        let scratch = UnsafeMutablePointer<Int32>.allocate(capacity: max(count, 1))
        let proj = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        let order = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
        let vecs = UnsafeMutablePointer<Float>.allocate(capacity: 3 * max(dim, 1))
        defer { perm.deallocate(); scratch.deallocate(); proj.deallocate(); order.deallocate(); vecs.deallocate() }
        for k in 0..<count { perm[k] = Int32(k) }
        let mean = vecs
        var u = vecs + dim, w = vecs + 2 * dim
        var stack = [(0, count)]
        while let (lo, hi) = stack.popLast() {
            let n = hi - lo
            if n < 3 { continue }   // a split of two leaves is fixed by the tree anyway
            // Row i of the block: the vector of the label at position lo + i.
            @inline(__always) func row(_ i: Int) -> UnsafePointer<Float> { x + Int(perm[lo + i]) * dim }
            // Mean of the block.
            for j in 0..<dim { mean[j] = 0 }
            for i in 0..<n { let r = row(i); for j in 0..<dim { mean[j] += r[j] } }
            for j in 0..<dim { mean[j] /= Float(n) }
            // Power iteration on (at most 4096 evenly spaced) centred rows.
            let stride = max(1, n / 4096)
            for j in 0..<dim { u[j] = Float(j % 7) - 3 + 0.5 }
            normalize(u, dim)
            for _ in 0..<6 {
                for j in 0..<dim { w[j] = 0 }
                // Sampled rows i = 0, stride, 2·stride, … taken four at a time:
                // four dot products run as independent chains (each still summed
                // over j in order), then w gets their terms in row order per j.
                var i = 0
                while i + 3 * stride < n {
                    let r0 = row(i), r1 = row(i + stride), r2 = row(i + 2 * stride), r3 = row(i + 3 * stride)
                    var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0
                    for j in 0..<dim {
                        let m = mean[j], uj = u[j]
                        a0 += (r0[j] - m) * uj
                        a1 += (r1[j] - m) * uj
                        a2 += (r2[j] - m) * uj
                        a3 += (r3[j] - m) * uj
                    }
                    for j in 0..<dim {
                        let m = mean[j]
                        w[j] = (((w[j] + a0 * (r0[j] - m)) + a1 * (r1[j] - m)) + a2 * (r2[j] - m)) + a3 * (r3[j] - m)
                    }
                    i += 4 * stride
                }
                while i < n {
                    let r = row(i)
                    var a: Float = 0
                    for j in 0..<dim { a += (r[j] - mean[j]) * u[j] }
                    for j in 0..<dim { w[j] += a * (r[j] - mean[j]) }
                    i += stride
                }
                if !normalize(w, dim) { break }
                swap(&u, &w)
            }
            // Projections, four rows' dot products as independent chains.
            var i = 0
            while i + 4 <= n {
                let r0 = row(i), r1 = row(i + 1), r2 = row(i + 2), r3 = row(i + 3)
                var a0: Float = 0, a1: Float = 0, a2: Float = 0, a3: Float = 0
                for j in 0..<dim {
                    let uj = u[j]
                    a0 += r0[j] * uj
                    a1 += r1[j] * uj
                    a2 += r2[j] * uj
                    a3 += r3[j] * uj
                }
                proj[lo + i] = a0; proj[lo + i + 1] = a1; proj[lo + i + 2] = a2; proj[lo + i + 3] = a3
                i += 4
            }
            while i < n {
                let r = row(i)
                var a: Float = 0
                for j in 0..<dim { a += r[j] * u[j] }
                proj[lo + i] = a
                i += 1
            }
            // Order by projection, ties by label (a total order: the result
            // does not depend on the sort's stability); only labels move.
            for k in lo..<hi { order[k] = k }
            var block = UnsafeMutableBufferPointer(start: order + lo, count: n)
            block.sort {
                proj[$0] != proj[$1] ? proj[$0] < proj[$1] : perm[$0] < perm[$1]
            }
            for k in lo..<hi { scratch[k] = perm[order[k]] }
            for k in lo..<hi { perm[k] = scratch[k] }
            let mid = CanonicalTree.split(lo, hi)
            stack.append((mid, hi))
            stack.append((lo, mid))
        }
        var leafOf = [Int32](repeating: 0, count: count)
        for pos in 0..<count { leafOf[Int(perm[pos])] = Int32(pos) }
        return leafOf
    }

    /// v ← v/‖v‖ (sum of squares in order); false, v unchanged, if ‖v‖² ≤ 1e-30.
    @discardableResult
    static func normalize(_ v: UnsafeMutablePointer<Float>, _ n: Int) -> Bool {
        var s: Float = 0
        for j in 0..<n { s += v[j] * v[j] }
        guard s > 1e-30 else { return false }
        let inv = 1 / s.squareRoot()
        for j in 0..<n { v[j] *= inv }
        return true
    }
}
