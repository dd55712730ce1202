import VAEASConfig
import VAEASCore

/// VAE-AS's auxiliary classifier s_ω(e | z) (paper §3.3): `cls_layers` hidden
/// layers (replicated, in the same store as the encoder and decoder, so one
/// allreduce covers them) and the V-way output layer, partitioned by label
/// rows across ranks (`PartitionedSoftmax`, or `PartitionedTreeSoftmax`).
///
/// Two gradients leave it each step: the classifier's own CE gradient into ω
/// (z held fixed), and the gradient of the Î and MD̂ terms into z (ω held fixed),
/// which `dz` hands to `VAE.backward`.
public final class AuxiliaryClassifier {
    public let latent: Int
    public let hidden: MLP?
    /// The partitioned V-way output layer: full or hierarchical softmax.
    public let output: PartitionedOutputLayer
    /// Gradient of the Î term wrt this rank's z rows (localRows × D), after a
    /// `backward` that returned true.
    public let dz: UnsafeMutablePointer<Float>
    private let arena = Arena()

    /// The hidden layers are `classifier.layers.*` of `store` (declared by
    /// `ParameterTable.classifierHidden`); the output layer is built here.
    public init(latent: Int, store: ParameterStore, activation: Activation, labels: Int, softmax: SoftmaxKind,
                localRowCapacity: Int, globalRowCapacity: Int, comm: Communicator) {
        self.latent = latent
        let names = store.slots.map(\.name).filter { $0.hasPrefix("classifier.layers.") && $0.hasSuffix(".weight") }
            .map { String($0.dropLast(".weight".count)) }
        hidden = names.isEmpty ? nil : MLP(names, store: store, activation: activation, activateLast: true,
                                           capacity: localRowCapacity)
        let h = hidden?.outFeatures ?? latent
        switch softmax {
        case .tree:
            output = PartitionedTreeSoftmax(labels: labels, width: h, comm: comm,
                                            globalRowCapacity: globalRowCapacity, localRowCapacity: localRowCapacity)
        case .full:
            output = PartitionedSoftmax(labels: labels, width: h, comm: comm,
                                        globalRowCapacity: globalRowCapacity, localRowCapacity: localRowCapacity)
        }
        dz = arena.floats(localRowCapacity * latent)
    }

    /// Forward for this rank's `localRows` rows of z; `targets` are the labels
    /// of all `batch · samples` global rows (row i·L + l).
    public func forward(z: UnsafePointer<Float>, localRows: Int, targets: UnsafeBufferPointer<Int32>,
                        batch: Int, samples: Int, params: UnsafePointer<Float>) {
        var h = z
        if let hidden {
            hidden.forward(z, rows: localRows, params: params)
            h = UnsafePointer(hidden.output)
        }
        Trace.span("classifier output layer forward", .classifier) {
            output.forward(hLocal: h, localRows: localRows, targets: targets, batch: batch, samples: samples)
        }
    }

    /// Backward: CE (scaled by `ceScale`) into ω; into `dz` (ω held fixed) Ĥ scaled by `miScale` and
    /// CE scaled by `zCEScale` (eq. 14's β·mean CE term; `Objective`) when either is non-zero.
    /// Returns whether `dz` was written. `layerDone`: called per hidden layer once its gradients
    /// are complete.
    @discardableResult
    public func backward(z: UnsafePointer<Float>, localRows: Int, ceScale: Float, miScale: Float, zCEScale: Float = 0,
                         estimator: MIEstimator, params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>,
                         layerDone: ((Linear) -> Void)? = nil) -> Bool {
        Trace.span("classifier output layer backward", .classifier) {
            output.backward(ceScale: ceScale, miScale: miScale, estimator: estimator)
        }
        let dH = output.rowGather
        let intoZ = miScale != 0 || zCEScale != 0
        if zCEScale != 0 {
            // The output layer's input gradient of zCEScale·Σ CE is (zCEScale/ceScale)·dH_CE: the CE rows it
            // already computed for ω, reused. Before the hidden layers' backward, which overwrites dH_CE.
            let f = zCEScale / ceScale, n = localRows * output.width
            if miScale != 0 {
                for i in 0..<n { dH.dHiddenMI[i] += f * dH.dHiddenCE[i] }
            } else {
                for i in 0..<n { dH.dHiddenMI[i] = f * dH.dHiddenCE[i] }
            }
        }
        guard let hidden else {
            if intoZ { dz.update(from: dH.dHiddenMI, count: localRows * latent) }
            return intoZ
        }
        hidden.backward(dout: dH.dHiddenCE, input: z, rows: localRows, params: params, grads: grads, dinput: nil,
                        layerDone: layerDone)
        if intoZ {
            hidden.backward(dout: dH.dHiddenMI, input: z, rows: localRows, params: params, grads: nil, dinput: dz)
        }
        return intoZ
    }
}
