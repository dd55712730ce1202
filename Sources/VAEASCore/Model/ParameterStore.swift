import VAEASConfig

/// One named tensor inside a `ParameterStore`.
public struct ParameterSlot: Sendable {
    public let name: String
    /// PyTorch layout: `[out, in]` for a weight, `[out]` for a bias.
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
}

/// All parameters of one kind (e.g. the replicated ones) in one flat Float
/// buffer, with a gradient buffer of the same layout.
///
/// The gradient buffer is what the data-parallel step allreduces: one fused
/// collective per step instead of one per tensor (PyTorch DDP's bucket, here a
/// single bucket).
public final class ParameterStore {
    public private(set) var slots: [ParameterSlot] = []
    public private(set) var count = 0
    public private(set) var values: UnsafeMutablePointer<Float>
    public private(set) var grads: UnsafeMutablePointer<Float>
    private var capacity = 0
    private var sealed = false

    public init() {
        values = .allocate(capacity: 1)
        grads = .allocate(capacity: 1)
    }

    deinit {
        values.deallocate()
        grads.deallocate()
    }

    /// The tensors of `table` (`\(name).weight` [out, in], `\(name).bias` [out] per entry), in order, allocated.
    public convenience init(_ table: ParameterTable) {
        self.init()
        for e in table.entries {
            _ = register("\(e.name).weight", shape: [e.outFeatures, e.inFeatures])
            _ = register("\(e.name).bias", shape: [e.outFeatures])
        }
        allocate()
    }

    /// Reserves a tensor; returns its offset. Only before `allocate()`.
    public func register(_ name: String, shape: [Int]) -> Int {
        precondition(!sealed, "ParameterStore: register after allocate")
        precondition(!slots.contains { $0.name == name }, "duplicate parameter \(name)")
        let slot = ParameterSlot(name: name, shape: shape, offset: count)
        slots.append(slot)
        count += slot.count
        return slot.offset
    }

    /// Allocates values and gradients, zeroed. Called once, after every `register`.
    public func allocate() {
        precondition(!sealed)
        sealed = true
        values.deallocate()
        grads.deallocate()
        values = .allocate(capacity: max(count, 1))
        grads = .allocate(capacity: max(count, 1))
        values.initialize(repeating: 0, count: max(count, 1))
        grads.initialize(repeating: 0, count: max(count, 1))
    }

    public func zeroGrads() { grads.update(repeating: 0, count: count) }

    public func slot(named name: String) -> ParameterSlot? { slots.first { $0.name == name } }

    public var valueBuffer: UnsafeMutableBufferPointer<Float> { .init(start: values, count: count) }
    public var gradBuffer: UnsafeMutableBufferPointer<Float> { .init(start: grads, count: count) }
}
