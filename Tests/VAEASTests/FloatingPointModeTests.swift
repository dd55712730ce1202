import XCTest
import Foundation
import VAEAS
import CKernels

/// Subnormals are flushed to zero wherever the model computes (`FloatingPointMode`, why in
/// CKernels/include/ckernels_fpmode.h): in the thread that opened the BLAS and in every worker of
/// `Parallel.chunks`, and the mode really changes the arithmetic (switched off, the same products
/// give subnormals again).
final class FloatingPointModeTests: XCTestCase {
    /// Kept out of the optimizer's reach, so the products below run on the CPU, in the thread's mode.
    @_optimize(none) private func product(_ a: Float, _ b: Float) -> Float { a * b }

    private let smallestNormal = Float.leastNormalMagnitude           // 2^-126
    private let subnormal = Float.leastNormalMagnitude / 4            // 2^-128, exact

    func testOpeningTheBLASFlushesSubnormalsInThatThread() throws {
        _ = try BLAS.load()  // idempotent; the thread that opened it first got the mode before the library's threads
        XCTAssertTrue(FloatingPointMode.flushDenormalsInThisThread())
        XCTAssertTrue(FloatingPointMode.flushesDenormalsInThisThread)
        // Flush-to-zero: a result below 2^-126 is 0. Denormals-are-zero: a subnormal operand reads as 0.
        XCTAssertEqual(product(smallestNormal, 0.25), 0)
        XCTAssertEqual(product(1, subnormal), 0)
        XCTAssertEqual(product(smallestNormal, 2), smallestNormal * 2)  // normal numbers are untouched
    }

    func testSwitchedOffTheSameProductsGiveSubnormals() {
        defer { FloatingPointMode.flushDenormalsInThisThread() }
        XCTAssertEqual(ck_set_flush_denormals(0), 0)
        XCTAssertFalse(FloatingPointMode.flushesDenormalsInThisThread)
        XCTAssertEqual(product(smallestNormal, 0.25), subnormal)
        XCTAssertTrue(product(1, subnormal).isSubnormal)
    }

    func testEveryWorkerOfParallelChunksFlushes() {
        let parts = 4
        var flushed = [Bool](repeating: false, count: parts), results = [Float](repeating: 1, count: parts)
        flushed.withUnsafeMutableBufferPointer { f in
            results.withUnsafeMutableBufferPointer { r in
                let fp = f.baseAddress!, rp = r.baseAddress!
                Parallel.chunks(parts * 8, parts: parts) { range in
                    // A worker that predates the mode would see subnormals here.
                    let k = range.lowerBound / 8
                    fp[k] = FloatingPointMode.flushesDenormalsInThisThread
                    rp[k] = self.product(self.smallestNormal, 0.25)
                }
            }
        }
        XCTAssertEqual(flushed, [Bool](repeating: true, count: parts))
        XCTAssertEqual(results, [Float](repeating: 0, count: parts))
    }
}
