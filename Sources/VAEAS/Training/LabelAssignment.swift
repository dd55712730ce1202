/// The label e_i of training sample i for VAE-AS's classifier (design doc,
/// Notation): `modulo` e_i = i mod V; `random` a seeded, balanced assignment
/// e_i = π(i) mod V for a permutation π drawn from the run seed.
public struct LabelAssignment: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case modulo, random }
    public let labels: Int
    public let kind: Kind
    private let table: [Int32]

    public init(samples: Int, labels: Int, kind: Kind, seed: UInt32) {
        precondition(labels >= 1)
        self.labels = labels
        self.kind = kind
        switch kind {
        case .modulo: table = []
        case .random:
            let pi = Philox(seed: seed, purpose: .labelAssignment).permutation(samples, stream: 0)
            table = pi.map { Int32(Int($0) % labels) }
        }
    }

    @inline(__always)
    public func label(of sample: Int32) -> Int32 {
        kind == .modulo ? Int32(Int(sample) % labels) : table[Int(sample)]
    }
}
