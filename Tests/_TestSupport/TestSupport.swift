import Foundation

/// Deterministic test numbers (not the trainer's streams).
public struct TestRNG {
    public var state: UInt64
    public init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    public mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
    public mutating func uniform(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    public mutating func array(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] { (0..<n).map { _ in uniform(lo, hi) } }
}

/// Central difference of f at p[i]; f must be computed fresh on each call.
public func centralDifference(_ p: UnsafeMutablePointer<Float>, _ i: Int, h: Float, _ f: () -> Double) -> Double {
    let old = p[i]
    p[i] = old + h
    let up = f()
    p[i] = old - h
    let down = f()
    p[i] = old
    // The actual step after Float rounding, not the nominal h.
    let step = Double(old + h) - Double(old - h)
    return (up - down) / step
}

/// |a − b| ≤ atol + rtol · max(|a|, |b|)
public func close(_ a: Double, _ b: Double, rtol: Double, atol: Double) -> Bool {
    abs(a - b) <= atol + rtol * max(abs(a), abs(b))
}

/// Repository root (three levels above this file) and the shared data beside it
/// (`<repo>/../shared/data`, or $VAEAS_SHARED_DATA).
public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
public let sharedData = ProcessInfo.processInfo.environment["VAEAS_SHARED_DATA"]
    ?? repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/data").path

/// A heap copy of `values` whose address stays put while finite differences poke it.
public func pointer(_ values: [Float]) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
    p.initialize(from: values, count: values.count)
    return p
}

/// The softmax classifier's outputs computed directly in Double over all V labels, the reference the
/// partitioned and fused Float kernels are checked against: for each of `rows` rows of H (rows × h),
/// logits l_j = b_j + H_r · W_j (W: V × h), probabilities p = softmax(l), CE = log Σ e^l − l_target,
/// and entropy −Σ p log p.
public func referenceSoftmax(H: [Float], W: [Float], bias: [Float], targets: [Int32], rows: Int, width h: Int)
    -> (p: [[Double]], ce: [Double], entropy: [Double]) {
    let V = bias.count
    var p = [[Double]](), ce = [Double](), ent = [Double]()
    for r in 0..<rows {
        var l = [Double](repeating: 0, count: V)
        for j in 0..<V {
            var a = Double(bias[j])
            for k in 0..<h { a += Double(H[r * h + k]) * Double(W[j * h + k]) }
            l[j] = a
        }
        let m = l.max()!, z = l.reduce(0) { $0 + Foundation.exp($1 - m) }
        let pr = l.map { Foundation.exp($0 - m) / z }
        p.append(pr)
        ce.append(m + Foundation.log(z) - l[Int(targets[r])])
        ent.append(-pr.reduce(0) { $0 + ($1 > 0 ? $1 * Foundation.log($1) : 0) })
    }
    return (p, ce, ent)
}
