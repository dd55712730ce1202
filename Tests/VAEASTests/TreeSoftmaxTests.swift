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
}
