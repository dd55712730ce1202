import VAEASCore
import VAEASDistributed
import SafeTensors

/// What the training loop, checkpoints and `bench` read of a step: the
/// optimizer's state, the replicas' agreement and the reduction's shape.
extension DataParallelStep {
    /// The replicated parameters' Adam moments, whole (in parameter order), at
    /// `root` (nil elsewhere). Collective with ZeRO.
    public func fullMoments(root: Int = 0) -> (m: [Float], v: [Float])? {
        reducer.gatherMoments(of: optimizer, root: root)
    }

    /// The step's replicated part of a training-state checkpoint (PyTorch
    /// DCP's `Stateful`; the partitioned layer saves its own rows,
    /// `PartitionedOutputLayer.shardState`): every replicated tensor with its
    /// Adam moments under PyTorch's state names, whole on `root` (nil
    /// elsewhere; collective with ZeRO, whose ranks each hold a slice of the
    /// moments), so the file is the same with or without ZeRO and loads at any
    /// rank count. The data order, the noise and the schedule have no state of
    /// their own: they are functions of the seed, the epoch and the step.
    public func replicatedState(root: Int = 0) throws -> SafeTensorsWriter? {
        guard let moments = fullMoments(root: root) else { return nil }
        let p = model.parameters
        var w = SafeTensorsWriter()
        for slot in p.slots {
            let r = slot.offset..<(slot.offset + slot.count)
            try w.add(slot.name, shape: slot.shape, data: UnsafeBufferPointer(start: p.values + slot.offset, count: slot.count))
            try moments.m[r].withUnsafeBufferPointer { try w.add(slot.name + ".exp_avg", shape: slot.shape, data: $0) }
            try moments.v[r].withUnsafeBufferPointer { try w.add(slot.name + ".exp_avg_sq", shape: slot.shape, data: $0) }
        }
        w.metadata = ["adam_step": "\(optimizer.step)", "classifier_adam_step": "\(classifierAdamStep)",
                      "global_step": "\(globalStep)"]
        return w
    }

    /// Parameters, Adam's moments (this rank's slice) and step counts from a
    /// file written by `replicatedState`.
    public func loadReplicatedState(_ file: SafeTensorsFile) throws {
        let p = model.parameters
        var m = [Float](repeating: 0, count: p.count), v = m
        for slot in p.slots {
            let range = slot.offset..<(slot.offset + slot.count)
            let values = try file.checkpointFloats(slot.name, shape: slot.shape)
            values.withUnsafeBufferPointer { (p.values + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
            m.replaceSubrange(range, with: try file.checkpointFloats(slot.name + ".exp_avg", shape: slot.shape))
            v.replaceSubrange(range, with: try file.checkpointFloats(slot.name + ".exp_avg_sq", shape: slot.shape))
        }
        guard let s = file.metadata["adam_step"].flatMap(Int.init) else {
            throw CheckpointError(path: file.path, message: "__metadata__ key 'adam_step' missing")
        }
        restoreOptimizer(step: s, m: m, v: v)
        // Older checkpoints have one count: the classifier's group stepped with the rest.
        classifierAdamStep = file.metadata["classifier_adam_step"].flatMap(Int.init) ?? s
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
