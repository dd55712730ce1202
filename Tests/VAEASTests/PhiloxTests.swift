import XCTest
import _TestSupport
import VAEAS

final class PhiloxTests: XCTestCase {
    /// Known-answer vectors of Random123's philox4x32-10 (kat_vectors).
    func testKnownAnswers() {
        let r0 = Philox(key0: 0, key1: 0).block(0, 0, 0, 0)
        XCTAssertEqual([r0.0, r0.1, r0.2, r0.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let r1 = Philox(key0: 0xffff_ffff, key1: 0xffff_ffff).block(0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff)
        XCTAssertEqual([r1.0, r1.1, r1.2, r1.3], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let r2 = Philox(key0: 0xa409_3822, key1: 0x299f_31d0).block(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344)
        XCTAssertEqual([r2.0, r2.1, r2.2, r2.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    func testNormalsHaveUnitMomentsAndDoNotDependOnCount() {
        let rng = Philox(seed: 7, purpose: .reparameterization)
        var xs = [Float](repeating: 0, count: 100_000)
        xs.withUnsafeMutableBufferPointer { rng.fillNormal($0.baseAddress!, count: $0.count, c1: 3, c2: 1) }
        let mean = xs.reduce(0.0) { $0 + Double($1) } / Double(xs.count)
        let variance = xs.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(xs.count) - mean * mean
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.02)
        var short = [Float](repeating: 0, count: 7)
        short.withUnsafeMutableBufferPointer { rng.fillNormal($0.baseAddress!, count: 7, c1: 3, c2: 1) }
        XCTAssertEqual(Array(xs[0..<7]), short, "draw j must not depend on how many are drawn")
    }

    func testPermutationIsAPermutationAndDependsOnStream() {
        let rng = Philox(seed: 1, purpose: .permutation)
        let p = rng.permutation(1000, stream: 1)
        XCTAssertEqual(Set(p).count, 1000)
        XCTAssertEqual(p.min(), 0); XCTAssertEqual(p.max(), 999)
        XCTAssertEqual(p, rng.permutation(1000, stream: 1))
        XCTAssertNotEqual(p, rng.permutation(1000, stream: 2))
    }
}
