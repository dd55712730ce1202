import VAEASConfig
import VAEASData

/// The label e_i of training sample i for VAE-AS's classifier (design doc,
/// Notation): `modulo` e_i = i mod V; `random` a seeded, balanced assignment
/// e_i = π(i) mod V for a permutation π drawn from the run seed.
public struct LabelAssignment: Sendable {
    public typealias Kind = LabelAssignmentKind
    public let labels: Int
    public let kind: Kind
    private let table: [Int32]
    /// Renaming applied last (`LeafOrder`): label → leaf of the tree.
    private let renaming: [Int32]?

    /// `dataset`: with `leafOrder` .pca, the labels are renamed so that labels
    /// of similar mean images are neighbours (for the hierarchical softmax).
    public init(samples: Int, labels: Int, kind: Kind, seed: UInt32, pcaLeavesFrom dataset: Dataset? = nil) {
        precondition(labels >= 1)
        self.labels = labels
        self.kind = kind
        switch kind {
        case .modulo: table = []
        case .random:
            let pi = Philox(seed: seed, purpose: .labelAssignment).permutation(samples, stream: 0)
            table = pi.map { Int32(Int($0) % labels) }
        }
        guard let dataset else { renaming = nil; return }
        // Each label's mean image (pixels / 255); labels with no sample stay zero.
        let d = dataset.dimension
        var means = [Float](repeating: 0, count: labels * d)
        var counts = [Int](repeating: 0, count: labels)
        let base = LabelAssignment(samples: samples, labels: labels, kind: kind, seed: seed)
        dataset.images.pixels.withUnsafeBufferPointer { px in
            for i in 0..<min(samples, dataset.count) {
                let e = Int(base.label(of: Int32(i)))
                counts[e] += 1
                for j in 0..<d { means[e * d + j] += Float(px[i * d + j]) * (1 / 255.0) }
            }
        }
        for e in 0..<labels where counts[e] > 1 {
            let inv = 1 / Float(counts[e])
            for j in 0..<d { means[e * d + j] *= inv }
        }
        renaming = PCALeafOrder.leaves(means, count: labels, dim: d)
    }

    @inline(__always)
    public func label(of sample: Int32) -> Int32 {
        let e = kind == .modulo ? Int32(Int(sample) % labels) : table[Int(sample)]
        return renaming.map { $0[Int(e)] } ?? e
    }
}
