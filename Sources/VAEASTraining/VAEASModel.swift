import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import VAEASConfig
import VAEASData

/// The VAE-AS model (paper §3.3): the VAE, the optional auxiliary classifier,
/// the one table of replicated parameters and the objective. One forward
/// (`forward`) serves training, the forward-only losses and evaluation; one
/// `backward` follows it. Collective when there is a classifier: every rank
/// calls both, in step, even with no rows of its own.
public final class VAEASModel {
    public let spec: ModelSpec
    /// Every collective of the model and its step goes through this wrapper of
    /// the communicator given, so `Trace` books it (and the stall watchdog hears of it).
    public let comm: TimedCommunicator
    /// The replicated parameters: encoder, decoder and the classifier's hidden
    /// layers, in `table` order, in one flat buffer (the fused gradient buffer).
    public let table: ParameterTable
    public let parameters: ParameterStore
    public let vae: VAE
    /// VAE-AS only: the classifier and the training samples' labels.
    public let classifier: AuxiliaryClassifier?
    public let labels: LabelAssignment?
    /// The objective being optimised: `fullObjective` at the current KL-annealing factor.
    public private(set) var objective: Objective
    /// Eq. 3 at the configured α, β.
    public let fullObjective: Objective
    /// KL annealing (`objective.kl_anneal_steps`): β is scaled by this factor in [0, 1].
    public var klAnnealFactor: Double = 1 {
        didSet { objective = fullObjective.annealed(klAnnealFactor) }
    }
    /// Where the classifier's replicated hidden layers sit in the flat buffer
    /// (empty without a classifier): their own Adam group (`train.cls_lr`).
    public let classifierParameterRange: Range<Int>
    /// L, reparameterisation samples per data point.
    public let samples: Int
    /// Largest global batch, and data points per rank per call.
    public let batchCapacity: Int
    public let localCapacity: Int
    private let arena = Arena()
    /// Labels of the current global batch's rows (i·L + l).
    private let targets: UnsafeMutablePointer<Int32>
    private var extraDz: UnsafePointer<Float>? = nil
    private var lastBatch = 0

    /// `trainSet`: the training data the labels are assigned over (its size
    /// is N; the PCA leaf order reads its images).
    public init(spec: ModelSpec, samples: Int, batch: Int, localCapacity: Int, trainSet: Dataset,
                comm base: Communicator) throws {
        precondition(!(base is TimedCommunicator), "VAEASModel wraps its communicator itself")
        let comm = TimedCommunicator(base)
        self.spec = spec
        self.comm = comm
        self.samples = samples
        batchCapacity = batch
        let localBatch = BlockPartition(total: batch, parts: comm.size).maxCount
        self.localCapacity = max(localCapacity, localBatch)
        let shape = spec.shape
        table = ParameterTable.vae(shape)
            + ParameterTable.classifierHidden(latent: shape.latent, width: shape.hidden, layers: spec.classifier?.layers ?? 0)
        parameters = ParameterStore(table)
        vae = VAE(shape: shape, capacity: self.localCapacity, samples: samples, store: parameters)
        if let c = spec.classifier {
            classifier = AuxiliaryClassifier(latent: shape.latent, store: parameters, activation: shape.activation,
                                             labels: c.labels, softmax: c.softmax, localRowCapacity: localBatch * samples,
                                             globalRowCapacity: batch * samples, comm: comm)
            let pca = c.softmax == .tree && c.leafOrder == .pca
            labels = LabelAssignment(samples: trainSet.count, labels: c.labels, kind: c.labelAssignment, seed: spec.seed,
                                     renaming: pca ? Self.sharedPCALeaves(samples: trainSet.count, labels: c.labels,
                                                                          kind: c.labelAssignment, seed: spec.seed,
                                                                          dataset: trainSet, comm: comm) : nil)
        } else {
            classifier = nil
            labels = nil
        }
        objective = spec.objectiveWeights
        fullObjective = objective
        let first = parameters.slots.first { $0.name.hasPrefix("classifier.") }?.offset ?? parameters.count
        classifierParameterRange = first..<parameters.count
        targets = arena.int32s(batch * samples)
    }

    /// `objective.leaf_order: pca`: the order computed on rank 0 only (its V × d
    /// means and its time are paid once, not on every rank) and broadcast,
    /// V int32s. The same order a single rank computes. Collective.
    public static func sharedPCALeaves(samples: Int, labels: Int, kind: LabelAssignment.Kind, seed: UInt32, dataset: Dataset,
                                comm: Communicator) -> [Int32] {
        var leafOf = comm.isRoot
            ? LabelAssignment.pcaLeaves(samples: samples, labels: labels, kind: kind, seed: seed, dataset: dataset)
            : [Int32](repeating: 0, count: labels)
        if comm.size > 1 { leafOf.withUnsafeMutableBytes { comm.broadcast($0, root: 0) } }
        return leafOf
    }

    /// Deterministic initial values from `spec.seed` on every rank, then
    /// rank 0's replicated parameters broadcast (as DDP does at wrap time).
    /// The partitioned rows are each rank's own and are not broadcast.
    public func initialize() {
        table.initialize(parameters, seed: spec.seed, scheme: spec.initialization)
        classifier?.output.initialize(rng: Philox(seed: spec.seed, purpose: .parameterInit), scheme: spec.initialization)
        comm.broadcast(UnsafeMutableRawBufferPointer(parameters.valueBuffer), root: 0)
    }

    /// Clears every gradient (replicated and this rank's partitioned rows).
    public func zeroGrads() {
        parameters.zeroGrads()
        classifier?.output.zeroGrads()
    }

    /// Forward on this rank's `n` data points of the global batch `batch`
    /// (global sample indices): x (n × input) and ε (n·L × D) are this rank's
    /// rows. encoder → z → classifier (collective, all B·L rows) → decoder →
    /// per-sample recon and KL. With `gradScale` (1/B for the data-parallel
    /// mean) the decoder's output gradient is also prepared for `backward`.
    /// Returns this rank's recon and KL sums and the classifier's global sums.
    public func forward(x: UnsafePointer<Float>, eps: UnsafePointer<Float>, n: Int, batch: UnsafeBufferPointer<Int32>,
                        gradScale: Float?) -> StepStats {
        let b = batch.count, L = samples
        vae.encode(x, n: n)
        vae.reparameterize(eps: eps, n: n, samples: L)
        var stats = StepStats()
        if let classifier, let labels {
            Trace.span("classifier forward", .classifier) {
                let rows = b * L
                for pos in 0..<b {
                    let e = labels.label(of: batch[pos])
                    for l in 0..<L { targets[pos * L + l] = e }
                }
                classifier.forward(z: vae.z, localRows: n * L, targets: UnsafeBufferPointer(start: targets, count: rows),
                                   batch: b, samples: L, params: parameters.values)
                let out = classifier.output, estimator = spec.classifier!.estimator
                for r in 0..<rows { stats.crossEntropy += out.crossEntropy[r]; stats.hHat += out.hHat(r, estimator) }
                stats.rows = rows
            }
        }
        vae.decode(rows: n * L)
        vae.reconstruction(x, n: n, samples: L, gradScale: gradScale)
        for i in 0..<n { stats.recon += vae.recon[i]; stats.kl += vae.kl[i] }
        stats.count = n
        lastBatch = b
        return stats
    }

    /// Backward after `forward(…, gradScale: s)`: the classifier's CE into ω
    /// and its Î term into z (collective), then the VAE with β·KL, all
    /// accumulated into `parameters.grads` (and the classifier's shard).
    /// `layerDone`: called once per replicated Linear as soon as its
    /// gradients are complete (the overlapped gradient reduction's hook).
    public func backward(x: UnsafePointer<Float>, eps: UnsafePointer<Float>, n: Int, gradScale: Float,
                         layerDone: ((Linear) -> Void)? = nil) {
        let L = samples
        var dz: UnsafePointer<Float>? = nil
        if let classifier {
            let rows = lastBatch * L
            let hasDz = Trace.span("classifier backward", .classifier) {
                classifier.backward(z: vae.z, localRows: n * L, ceScale: objective.ceGradientScale(rows: rows),
                                    miScale: objective.miGradientScale(rows: rows),
                                    zCEScale: objective.zCrossEntropyGradientScale(rows: rows), estimator: spec.classifier!.estimator,
                                    params: parameters.values, grads: parameters.grads, layerDone: layerDone)
            }
            if hasDz { dz = UnsafePointer(classifier.dz) }
        }
        vae.backward(x, eps: eps, n: n, samples: L, gradScale: gradScale, klWeight: objective.klWeight, extraDz: dz,
                     layerDone: layerDone)
    }

    /// One classifier-only pass (`train.cls_steps` > 1; the classifier must
    /// track q(x|z) while the encoder moves): z re-encoded from the same x and
    /// ε with the current encoder, then only the classifier's mean-CE gradient
    /// (ω's hidden layers into `parameters.grads`, its rows into the shard);
    /// no Î gradient, nothing into the VAE. Collective. Returns the CE sum.
    @discardableResult
    public func classifierOnlyPass(x: UnsafePointer<Float>, eps: UnsafePointer<Float>, n: Int,
                                   batch: UnsafeBufferPointer<Int32>) -> Double {
        guard let classifier, let labels else { return 0 }
        let b = batch.count, L = samples, rows = b * L
        Trace.span("encoder forward", .forward) {
            vae.encode(x, n: n)
            vae.reparameterize(eps: eps, n: n, samples: L)
        }
        return Trace.span("classifier-only pass", .classifier) {
            for pos in 0..<b {
                let e = labels.label(of: batch[pos])
                for l in 0..<L { targets[pos * L + l] = e }
            }
            zeroGrads()
            classifier.forward(z: vae.z, localRows: n * L, targets: UnsafeBufferPointer(start: targets, count: rows),
                               batch: b, samples: L, params: parameters.values)
            var ce = 0.0
            for r in 0..<rows { ce += classifier.output.crossEntropy[r] }
            _ = classifier.backward(z: vae.z, localRows: n * L, ceScale: objective.ceGradientScale(rows: rows),
                                    miScale: 0, estimator: spec.classifier!.estimator,
                                    params: parameters.values, grads: parameters.grads)
            return ce
        }
    }

    /// Finite iff this rank's partitioned gradients are (`gradientCheck`).
    public func shardGradientCheck() -> Double { classifier?.output.gradientCheck() ?? 0 }

    /// The checkpoint's tensors on rank 0 (nil elsewhere): the replicated
    /// parameters in table order, and for VAE-AS the output layer gathered
    /// from every rank in label (or preorder) order. Only rank 0 holds all V
    /// rows, and only while writing. Collective.
    public func checkpointWriter(metadata: CheckpointMetadata) throws -> SafeTensorsWriter? {
        let gathered = classifier?.output.gatheredTensors()
        guard comm.isRoot else { return nil }
        var writer = try Checkpoint.writer(for: parameters, metadata: metadata.entries)
        for t in gathered ?? [] { try writer.add(t.name, shape: t.shape, data: t.data) }
        return writer
    }

    /// Every tensor of a checkpoint written by `checkpointWriter`, each rank taking its own rows.
    public func load(_ file: SafeTensorsFile) throws {
        try Checkpoint.load(file, into: parameters)
        try classifier?.output.load(from: file)
    }
}

import SafeTensors
