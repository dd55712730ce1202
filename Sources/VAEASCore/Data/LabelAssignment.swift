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
    /// Computes that order here; a distributed run computes it on one rank
    /// and passes it to `init(…, renaming:)` on every rank instead.
    public init(samples: Int, labels: Int, kind: Kind, seed: UInt32, pcaLeavesFrom dataset: Dataset? = nil) {
        self.init(samples: samples, labels: labels, kind: kind, seed: seed,
                  renaming: dataset.map { Self.pcaLeaves(samples: samples, labels: labels, kind: kind, seed: seed, dataset: $0) })
    }

    /// With a given renaming (label → leaf), e.g. `pcaLeaves` computed elsewhere.
    public init(samples: Int, labels: Int, kind: Kind, seed: UInt32, renaming: [Int32]?) {
        precondition(labels >= 1)
        precondition(renaming == nil || renaming!.count == labels, "a renaming of \(renaming!.count) labels for \(labels)")
        self.labels = labels
        self.kind = kind
        switch kind {
        case .modulo: table = []
        case .random:
            let pi = Philox(seed: seed, purpose: .labelAssignment).permutation(samples, stream: 0)
            table = pi.map { Int32(Int($0) % labels) }
        }
        self.renaming = renaming
    }

    /// The PCA leaf order (`PCALeafOrder`) of the labels' mean images under
    /// the assignment (samples, labels, kind, seed): leafOf[label]. Holds
    /// V × d floats of means while it runs.
    public static func pcaLeaves(samples: Int, labels: Int, kind: Kind, seed: UInt32, dataset: Dataset) -> [Int32] {
        // Each label's mean image (pixels / 255); labels with no sample stay zero.
        let d = dataset.dimension
        var means = [Float](repeating: 0, count: labels * d)
        var counts = [Int](repeating: 0, count: labels)
        let base = LabelAssignment(samples: samples, labels: labels, kind: kind, seed: seed, renaming: nil)
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
        return PCALeafOrder.leaves(means, count: labels, dim: d)
    }

    @inline(__always)
    public func label(of sample: Int32) -> Int32 {
        let e = kind == .modulo ? Int32(Int(sample) % labels) : table[Int(sample)]
        return renaming.map { $0[Int(e)] } ?? e
    }
}
