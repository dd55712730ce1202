import XCTest
import _TestSupport
import VAEAS

final class AdamTests: XCTestCase {
    /// Two steps against torch.optim.Adam's update written out in Double.
    func testMatchesReferenceUpdate() {
        let n = 37   // not a multiple of 8: exercises the scalar tail
        var rng = TestRNG(5)
        let p0 = rng.array(n), g1 = rng.array(n), g2 = rng.array(n)
        let adam = Adam(count: n, lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        let p = pointer(p0); defer { p.deallocate() }
        g1.withUnsafeBufferPointer { adam.update(p, grads: $0.baseAddress!) }
        g2.withUnsafeBufferPointer { adam.update(p, grads: $0.baseAddress!) }
        for i in 0..<n {
            var m = 0.0, v = 0.0, x = Double(p0[i])
            for (t, g) in [(1, Double(g1[i])), (2, Double(g2[i]))] {
                m = 0.9 * m + 0.1 * g
                v = 0.999 * v + 0.001 * g * g
                let mh = m / (1 - pow(0.9, Double(t))), vh = v / (1 - pow(0.999, Double(t)))
                x -= 0.01 * mh / (vh.squareRoot() + 1e-8)
            }
            XCTAssertEqual(Double(p[i]), x, accuracy: 1e-6, "parameter \(i)")
        }
    }

    func testLargeBufferUsesThreadsAndAgreesWithSmallChunks() {
        let n = 300_001
        var rng = TestRNG(6)
        let p0 = rng.array(n), g = rng.array(n)
        let a = pointer(p0), b = pointer(p0)
        defer { a.deallocate(); b.deallocate() }
        let saved = BLAS.threads
        defer { BLAS.threads = saved }
        BLAS.threads = 2
        g.withUnsafeBufferPointer { Adam(count: n, lr: 0.001).update(a, grads: $0.baseAddress!) }
        BLAS.threads = 1
        g.withUnsafeBufferPointer { Adam(count: n, lr: 0.001).update(b, grads: $0.baseAddress!) }
        for i in stride(from: 0, to: n, by: 997) { XCTAssertEqual(a[i], b[i], "element \(i)") }
        XCTAssertEqual(a[n - 1], b[n - 1])
    }
}

final class PartitionTests: XCTestCase {
    func testBlockPartitionCoversAndBalances() {
        for total in [0, 1, 7, 100, 128, 50_000] {
            for parts in 1...5 {
                let p = BlockPartition(total: total, parts: parts)
                var next = 0
                for r in 0..<parts {
                    XCTAssertEqual(p.range(r).lowerBound, next)
                    next = p.range(r).upperBound
                    XCTAssertLessThanOrEqual(p.count(r), p.maxCount)
                    XCTAssertGreaterThanOrEqual(p.count(r), total / parts)
                }
                XCTAssertEqual(next, total)
                XCTAssertEqual(p.rankCounts(width: 3).total, 3 * total)
            }
        }
    }

    func testRankCountsDisplacements() {
        let c = RankCounts([3, 0, 5])
        XCTAssertEqual(c.displacements, [0, 3, 3])
        XCTAssertEqual(c.total, 8)
    }

    func testLocalCommunicatorIsIdentity() throws {
        let comm = LocalCommunicator()
        var a: [Float] = [1, 2, 3]
        a.withUnsafeMutableBufferPointer { comm.allreduceSum($0) }
        XCTAssertEqual(a, [1, 2, 3])
        var out = [Float](repeating: 0, count: 3)
        a.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { comm.allgatherv(send: s, receive: $0, counts: RankCounts([3])) }
        }
        XCTAssertEqual(out, a)
        XCTAssertEqual(comm.broadcast(bytes: [1, 2]), [1, 2])
        XCTAssertEqual(try comm.rootOnly { 5 }, 5)
        struct Boom: Error {}
        XCTAssertThrowsError(try comm.rootOnly { throw Boom() })
    }

    func testKernelSumIsExactForIntegersAndSeesNaN() {
        var x = [Float](repeating: 1, count: 100_003)
        XCTAssertEqual(x.withUnsafeBufferPointer { Kernels.sum($0.baseAddress!, count: $0.count) }, 100_003)
        x[77_777] = .nan
        XCTAssertTrue(x.withUnsafeBufferPointer { Kernels.sum($0.baseAddress!, count: $0.count) }.isNaN)
    }
}
