import VAEASConfig

/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
/// a counter-based generator. Output is a pure function of (key, counter), so a
/// random number that belongs to a sample can be recomputed on any rank, in any
/// order — the property behind "same seed, same run, whatever the rank count".
public struct Philox: Sendable {
    public var key: (UInt32, UInt32)

    /// What a stream of numbers is for; each purpose gets its own key so that
    /// (epoch, sample, draw) counters never collide across purposes.
    public enum Purpose: UInt32, Sendable {
        case parameterInit = 1, reparameterization = 2, binarization = 3,
             permutation = 4, evaluationNoise = 5, evaluationBinarization = 6,
             labelAssignment = 7
    }

    public init(key0: UInt32, key1: UInt32) { key = (key0, key1) }

    /// Key for `seed` and `purpose`.
    public init(seed: UInt32, purpose: Purpose) { key = (seed, purpose.rawValue &* 0x9E37_79B9 ^ 0x5851_F42D) }

    @inline(__always)
    static func mulhilo(_ a: UInt32, _ b: UInt32) -> (hi: UInt32, lo: UInt32) {
        let p = UInt64(a) &* UInt64(b)
        return (UInt32(truncatingIfNeeded: p >> 32), UInt32(truncatingIfNeeded: p))
    }

    /// The 4×32-bit block for counter (c0, c1, c2, c3).
    @inline(__always)
    public func block(_ c0: UInt32, _ c1: UInt32, _ c2: UInt32, _ c3: UInt32) -> (UInt32, UInt32, UInt32, UInt32) {
        var x0 = c0, x1 = c1, x2 = c2, x3 = c3
        var k0 = key.0, k1 = key.1
        for _ in 0..<10 {
            let (hi0, lo0) = Philox.mulhilo(0xD251_1F53, x0)
            let (hi1, lo1) = Philox.mulhilo(0xCD9E_8D57, x2)
            x0 = hi1 ^ x1 ^ k0
            x1 = lo1
            x2 = hi0 ^ x3 ^ k1
            x3 = lo0
            k0 = k0 &+ 0x9E37_79B9
            k1 = k1 &+ 0xBB67_AE85
        }
        return (x0, x1, x2, x3)
    }

    /// Uniform in [0, 1) with 24 random bits (exactly representable in Float).
    @inline(__always)
    public static func unitFloat(_ x: UInt32) -> Float { Float(x >> 8) * (1.0 / 16_777_216.0) }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    @inline(__always)
    static func unitFloatOpen(_ x: UInt32) -> Float { (Float(x >> 8) + 1) * (1.0 / 16_777_216.0) }

    /// Fills `out[0..<count]` with standard normals for stream (c1, c2, c3):
    /// draw j uses block j/4 and is the same whatever `count` is.
    /// Box–Muller on pairs of 24-bit uniforms.
    public func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, c1: UInt32, c2: UInt32, c3: UInt32 = 0) {
        var j = 0
        var blockIndex: UInt32 = 0
        while j < count {
            let r = block(blockIndex, c1, c2, c3)
            let (a0, b0) = Philox.boxMuller(r.0, r.1)
            let (a1, b1) = Philox.boxMuller(r.2, r.3)
            out[j] = a0
            if j + 1 < count { out[j + 1] = b0 }
            if j + 2 < count { out[j + 2] = a1 }
            if j + 3 < count { out[j + 3] = b1 }
            j += 4
            blockIndex &+= 1
        }
    }

    @inline(__always)
    static func boxMuller(_ u: UInt32, _ v: UInt32) -> (Float, Float) {
        let r = (-2 * logf(unitFloatOpen(u))).squareRoot()
        let theta = 2 * Float.pi * unitFloat(v)
        return (r * cosf(theta), r * sinf(theta))
    }

    /// Fills `out[0..<count]` with uniforms in [0, 1) for stream (c1, c2, c3).
    public func fillUniform(_ out: UnsafeMutablePointer<Float>, count: Int, c1: UInt32, c2: UInt32, c3: UInt32 = 0) {
        var j = 0
        var blockIndex: UInt32 = 0
        while j < count {
            let r = block(blockIndex, c1, c2, c3)
            out[j] = Philox.unitFloat(r.0)
            if j + 1 < count { out[j + 1] = Philox.unitFloat(r.1) }
            if j + 2 < count { out[j + 2] = Philox.unitFloat(r.2) }
            if j + 3 < count { out[j + 3] = Philox.unitFloat(r.3) }
            j += 4
            blockIndex &+= 1
        }
    }

    /// A uniformly random permutation of 0..<n (Fisher–Yates), a pure function of
    /// (key, stream): every rank computes the same one without communicating.
    public func permutation(_ n: Int, stream: UInt32) -> [Int32] {
        var p = [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = Int32(i) }
            count = n
        }
        if n < 2 { return p }
        var counter: UInt32 = 0
        var i = n - 1
        while i > 0 {
            let r = block(counter, stream, 0xFFFF_FFFF, 0)
            counter &+= 1
            // 64 random bits per swap: the modulo bias is below 2^-40 for n < 2^24.
            let x = (UInt64(r.0) << 32) | UInt64(r.1)
            let j = Int(x % UInt64(i + 1))
            p.swapAt(i, j)
            i -= 1
        }
        return p
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
