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
