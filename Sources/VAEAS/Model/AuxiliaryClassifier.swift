/// VAE-AS's auxiliary classifier s_ω(e | z) (paper §3.3): `cls_layers` hidden
/// layers (replicated, in the same store as the encoder and decoder, so one
/// allreduce covers them) and the V-way output layer, partitioned by label
/// rows across ranks (`PartitionedSoftmax`).
///
/// Two gradients leave it each step: the classifier's own CE gradient into ω
/// (z held fixed), and the gradient of the Î term into z (ω held fixed), which
/// `dz` hands to `VAE.backward`.
public final class AuxiliaryClassifier {
    public let latent: Int
    public let hidden: MLP?
    /// The partitioned V-way output layer: full or hierarchical softmax.
    public let softmax: LabelOutputLayer
    /// Gradient of the Î term wrt this rank's z rows (localRows × D).
    public let dz: UnsafeMutablePointer<Float>
    let localRowCapacity: Int

    /// Registers the hidden layers in `store` (not yet allocated).
    public init(latent: Int, hidden width: Int, layers: Int, activation: Activation, labels: Int,
                localRowCapacity: Int, globalRowCapacity: Int, comm: Communicator, store: ParameterStore,
                tree: Bool = false) {
        self.latent = latent
        self.localRowCapacity = localRowCapacity
        hidden = layers == 0 ? nil : MLP(prefix: "classifier.layers",
                                          widths: [latent] + Array(repeating: width, count: layers),
                                          activation: activation, activateLast: true,
                                          capacity: localRowCapacity, store: store)
        let h = layers == 0 ? latent : width
        softmax = tree
            ? PartitionedTreeSoftmax(labels: labels, width: h, comm: comm,
                                     globalRowCapacity: globalRowCapacity, localRowCapacity: localRowCapacity)
            : PartitionedSoftmax(labels: labels, width: h, comm: comm,
                                 globalRowCapacity: globalRowCapacity, localRowCapacity: localRowCapacity)
        dz = .allocate(capacity: max(localRowCapacity * latent, 1))
    }

    deinit { dz.deallocate() }

    public func initialize(_ params: UnsafeMutablePointer<Float>, seed: UInt32, scheme: Initialization) {
        let rng = Philox(seed: seed, purpose: .parameterInit)
        hidden?.initialize(params, rng: rng, firstTensorID: 300, scheme: scheme)
        softmax.initialize(rng: rng, tensorID: 400, scheme: scheme)
    }

    /// Forward for this rank's `localRows` rows of z; `softmax.targets` must
    /// hold the labels of all `rows` global rows.
    public func forward(z: UnsafePointer<Float>, localRows: Int, rows: Int,
                        layout: RowLayout,
                        params: UnsafePointer<Float>) {
        var h = z
        if let hidden {
            hidden.forward(z, rows: localRows, params: params)
            h = UnsafePointer(hidden.output)
        }
        softmax.forward(hLocal: h, localRows: localRows, rows: rows, layout: layout)
    }

    /// Backward: CE (scaled by `ceScale`) into ω; Ĥ (scaled by `miScale`) into
    /// `dz` when miScale ≠ 0. Returns whether `dz` was written.
    @discardableResult
    public func backward(z: UnsafePointer<Float>, localRows: Int, ceScale: Float, miScale: Float,
                         estimator: MIEstimator, layout: RowLayout,
                         params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>) -> Bool {
        softmax.backward(ceScale: ceScale, miScale: miScale, estimator: estimator, layout: layout)
        guard let hidden else {
            if miScale != 0 { dz.update(from: softmax.dHiddenMI, count: localRows * latent) }
            return miScale != 0
        }
        hidden.backward(dout: softmax.dHiddenCE, input: z, rows: localRows, params: params, grads: grads, dinput: nil)
        if miScale != 0 {
            hidden.backward(dout: softmax.dHiddenMI, input: z, rows: localRows, params: params, grads: nil, dinput: dz)
        }
        return miScale != 0
    }
}
