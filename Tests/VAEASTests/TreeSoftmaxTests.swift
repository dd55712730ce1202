import XCTest
import _TestSupport
import VAEAS

final class TreeSoftmaxTests: XCTestCase {
    /// Σ_e s(e | h) = 1 for random nodes, for V a power of two or not.
    func testLeafProbabilitiesSumToOne() {
        for labels in [2, 3, 7, 64, 1000] {
            let h = 5
            let tree = PartitionedTreeSoftmax(labels: labels, width: h, comm: LocalCommunicator(),
                                              globalRowCapacity: labels, localRowCapacity: labels)
            tree.initialize(rng: Philox(seed: 9, purpose: .parameterInit), scheme: .pytorch)
            XCTAssertEqual(tree.nodeCount, labels - 1)
            var rng = TestRNG(UInt64(labels))
            let x = rng.array(h, -2, 2)
            // The same hidden vector on every row; row e asks for leaf e.
            let hLocal = (0..<labels).flatMap { _ in x }
            let targets = (0..<labels).map { Int32($0) }
            hLocal.withUnsafeBufferPointer { h in
                targets.withUnsafeBufferPointer { tree.forward(hLocal: h.baseAddress!, localRows: labels, targets: $0, batch: labels, samples: 1) }
            }
            let total = (0..<labels).reduce(0.0) { $0 + exp(-tree.crossEntropy[$1]) }
            XCTAssertEqual(total, 1, accuracy: 1e-5, "V = \(labels)")
            XCTAssertTrue((0..<labels).allSatisfy { tree.crossEntropy[$0] > 0 })
        }
    }

    /// The checkpoint's node order is preorder over the canonical tree: the
    /// root's left child is node 1, its right child node 1 + (mid − 1).
    func testGatheredTensorsArePreorder() throws {
        let tree = PartitionedTreeSoftmax(labels: 6, width: 2, comm: LocalCommunicator(), globalRowCapacity: 1, localRowCapacity: 1)
        for i in 0..<tree.store.count { tree.store.values[i] = Float(i) }
        let t = try XCTUnwrap(tree.gatheredTensors())
        XCTAssertEqual(t.map(\.name), ["classifier.tree.weight", "classifier.tree.bias"])
        XCTAssertEqual(t[0].shape, [5, 2])
        XCTAssertEqual(t[1].shape, [5])
        // One rank holds every node in preorder already.
        XCTAssertEqual(t[0].data, Array(UnsafeBufferPointer(start: tree.store.values + tree.weight, count: 10)))
    }
}

final class LeafOrderTests: XCTestCase {
    /// Four well-separated clusters of 25 points: the order is a permutation,
    /// and each cluster fills one of the tree's four depth-2 subtrees.
    func testPCAOrderIsAPermutationThatKeepsClustersInSubtrees() {
        let perCluster = 25, dim = 6, n = 4 * perCluster
        var rng = TestRNG(12)
        let centres: [[Float]] = [[9, 0, 0, 0, 0, 0], [-9, 0, 0, 0, 0, 0], [0, 0, 9, 0, 0, 0], [0, 0, -9, 0, 0, 1]]
        // Interleave the clusters so that label order says nothing about them.
        var points = [Float](repeating: 0, count: n * dim)
        for i in 0..<n { for j in 0..<dim { points[i * dim + j] = centres[i % 4][j] + rng.uniform(-1, 1) } }
        let leafOf = PCALeafOrder.leaves(points, count: n, dim: dim)
        XCTAssertEqual(Set(leafOf.map(Int.init)), Set(0..<n))
        // Depth-2 subtrees of the canonical tree over 100 leaves: [0,25), [25,50), [50,75), [75,100).
        for c in 0..<4 {
            let quarters = Set((0..<n).filter { $0 % 4 == c }.map { Int(leafOf[$0]) / perCluster })
            XCTAssertEqual(quarters.count, 1, "cluster \(c) is spread over subtrees \(quarters)")
        }
        XCTAssertEqual(PCALeafOrder.leaves(points, count: n, dim: dim), leafOf, "deterministic")
    }

    /// The in-place order (rows read through the permutation, never moved) is
    /// the order of the copying implementation it replaced, kept here verbatim
    /// as the reference: over 9000 vectors (the power iteration's stride 2 at
    /// the top), clustered and random data, and labels with equal vectors.
    func testInPlaceOrderEqualsTheCopyingImplementation() {
        var rng = TestRNG(31)
        let n = 9000, dim = 11
        var clustered = [Float](repeating: 0, count: n * dim)
        for i in 0..<n { for j in 0..<dim { clustered[i * dim + j] = Float((i * 7919) % 13) * (j % 3 == 0 ? 1 : -0.5) + rng.uniform(-1, 1) } }
        var ties = rng.array(300 * 5)
        for j in 0..<5 { ties[7 * 5 + j] = ties[3 * 5 + j]; ties[200 * 5 + j] = ties[3 * 5 + j] }
        for (x, count, d) in [(clustered, n, dim), (rng.array(777 * 784, 0, 1), 777, 784), (ties, 300, 5)] {
            XCTAssertEqual(PCALeafOrder.leaves(x, count: count, dim: d), Self.copyingLeaves(x, count: count, dim: d),
                           "count \(count), dim \(d)")
        }
    }

    /// PCALeafOrder.leaves as of commit 533af70 (it moved rows and labels together).
    static func copyingLeaves(_ vectors: [Float], count: Int, dim: Int) -> [Int32] {
        var x = vectors
        var perm = (0..<count).map { Int32($0) }
        var proj = [Float](repeating: 0, count: count)
        var scratchRows = [Float](repeating: 0, count: count * dim)
        var scratchPerm = [Int32](repeating: 0, count: count)
        var mean = [Float](repeating: 0, count: dim), u = [Float](repeating: 0, count: dim), w = [Float](repeating: 0, count: dim)
        func normalize(_ v: inout [Float]) -> Bool {
            var s: Float = 0
            for a in v { s += a * a }
            guard s > 1e-30 else { return false }
            let inv = 1 / s.squareRoot()
            for j in 0..<v.count { v[j] *= inv }
            return true
        }
        var stack = [(0, count)]
        while let (lo, hi) = stack.popLast() {
            let n = hi - lo
            if n < 3 { continue }
            x.withUnsafeMutableBufferPointer { xb in
                let block = xb.baseAddress! + lo * dim
                for j in 0..<dim { mean[j] = 0 }
                for i in 0..<n { for j in 0..<dim { mean[j] += block[i * dim + j] } }
                for j in 0..<dim { mean[j] /= Float(n) }
                let stride = max(1, n / 4096)
                for j in 0..<dim { u[j] = Float(j % 7) - 3 + 0.5 }
                _ = normalize(&u)
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
}
