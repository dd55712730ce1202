import VAEASConfig

/// Owns every buffer of one component (a layer, the VAE, a step), allocated
/// once before the training loop and freed together when the owner goes away
/// (llm.c's one-allocation-per-model idea). Buffers start zeroed, so a read
/// before the first write is at least reproducible.
public final class Arena {
    private var blocks: [UnsafeMutableRawPointer] = []
    public private(set) var bytes = 0

    public init() {}

    deinit { blocks.forEach { $0.deallocate() } }

    /// `count` zeroed elements (at least one, so an empty buffer still has an address).
    public func allocate<T>(_ type: T.Type, _ count: Int) -> UnsafeMutablePointer<T> {
        let n = Swift.max(count, 1) * MemoryLayout<T>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: Swift.max(MemoryLayout<T>.alignment, 64))
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: n)
        blocks.append(raw)
        bytes += n
        return raw.bindMemory(to: T.self, capacity: Swift.max(count, 1))
    }

    public func floats(_ count: Int) -> UnsafeMutablePointer<Float> { allocate(Float.self, count) }
    public func doubles(_ count: Int) -> UnsafeMutablePointer<Double> { allocate(Double.self, count) }
    public func int32s(_ count: Int) -> UnsafeMutablePointer<Int32> { allocate(Int32.self, count) }
}
