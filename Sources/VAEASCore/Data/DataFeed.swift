import VAEASConfig
import VAEASData


/// Turns dataset rows into float batches. Randomness is a function of the
/// global sample index, never of the rank, so any rank count sees the same data.
public struct DataFeed {
    public let dataset: Dataset
    public let binarization: Binarization
    private let rng: Philox
    private let purpose: Philox.Purpose

    /// `evaluation`: a dynamic binarization fixed once (epoch-independent), so
    /// test metrics are comparable across epochs.
    public init(dataset: Dataset, binarization: Binarization, seed: UInt32, evaluation: Bool = false) {
        self.dataset = dataset
        self.binarization = binarization
        purpose = evaluation ? .evaluationBinarization : .binarization
        rng = Philox(seed: seed, purpose: purpose)
    }

    public var count: Int { dataset.count }
    public var dimension: Int { dataset.dimension }

    /// Rows `indices` of the dataset into `x` (indices.count × dimension).
    public func fill(_ x: UnsafeMutablePointer<Float>, indices: UnsafeBufferPointer<Int32>, epoch: Int) {
        let d = dimension
        let stream = purpose == .evaluationBinarization ? 0 : UInt32(truncatingIfNeeded: epoch)
        dataset.images.pixels.withUnsafeBufferPointer { px in
            for (row, idx) in indices.enumerated() {
                let src = px.baseAddress! + Int(idx) * d
                let dst = x + row * d
                switch binarization {
                case .static:
                    for p in 0..<d { dst[p] = src[p] >= 128 ? 1 : 0 }
                case .dynamic:
                    // Uniforms first (into dst), then compare in place: one
                    // Philox block per four pixels.
                    rng.fillUniform(dst, count: d, c1: UInt32(idx), c2: stream)
                    for p in 0..<d { dst[p] = dst[p] < Float(src[p]) * (1 / 255.0) ? 1 : 0 }
                }
            }
        }
    }
}

/// Reparameterisation noise ε for global sample i, epoch e, sample l:
/// Philox(seed, purpose) at counter (block, i, e, l).
public struct NoiseSource {
    private let rng: Philox
    public let latent: Int
    public let samples: Int

    public init(seed: UInt32, latent: Int, samples: Int, purpose: Philox.Purpose = .reparameterization) {
        rng = Philox(seed: seed, purpose: purpose)
        self.latent = latent
        self.samples = samples
    }

    /// ε rows (i·L + l) for the given global indices.
    public func fill(_ eps: UnsafeMutablePointer<Float>, indices: UnsafeBufferPointer<Int32>, epoch: Int) {
        for (row, idx) in indices.enumerated() {
            for l in 0..<samples {
                rng.fillNormal(eps + (row * samples + l) * latent, count: latent,
                               c1: UInt32(idx), c2: UInt32(truncatingIfNeeded: epoch), c3: UInt32(l))
            }
        }
    }
}
