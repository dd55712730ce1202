import VAEASCore

/// What the training loop, checkpoints and `bench` read of a step: the
/// optimizer's state, the replicas' agreement and the reduction's shape.
extension DataParallelStep {
    /// The replicated parameters' Adam moments, whole (in parameter order), at
    /// `root` (nil elsewhere). Collective with ZeRO.
    public func fullMoments(root: Int = 0) -> (m: [Float], v: [Float])? {
        reducer.gatherMoments(of: optimizer, root: root)
    }

    /// Restores Adam from whole moments (a checkpoint): this rank keeps its slice.
    public func restoreOptimizer(step: Int, m: [Float], v: [Float]) {
        let r = optimizerSlice
        m.withUnsafeBufferPointer { mp in
            v.withUnsafeBufferPointer { vp in
                optimizer.restore(step: step, m: mp.baseAddress! + r.lowerBound, v: vp.baseAddress! + r.lowerBound)
            }
        }
    }

    /// Gradient buckets (0: one blocking allreduce or ZeRO's reduce-scatter).
    public var bucketCount: Int { reducer.bucketCount }

    /// Bytes of the replicated parameters' optimizer state on this rank (Adam's two moments).
    public var optimizerStateBytes: Int { 8 * optimizerSlice.count }

    /// FNV-1a of the replicated parameter bytes, as two exact 32-bit halves;
    /// equal max and min over ranks means bit-identical replicas.
    public func replicasIdentical() -> Bool {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        UnsafeRawBufferPointer(model.parameters.valueBuffer).forEach { h = (h ^ UInt64($0)) &* 0x100_0000_01b3 }
        let parts = [Double(h >> 32), Double(h & 0xFFFF_FFFF)]
        let hi = comm.max(parts)
        let lo = comm.max(parts.map { -$0 })
        return hi[0] == -lo[0] && hi[1] == -lo[1]
    }

    /// Sum of the replicated parameters (Double): comparable across rank counts up to rounding.
    public var parameterSum: Double { Kernels.sum(model.parameters.values, count: model.parameters.count) }
}
