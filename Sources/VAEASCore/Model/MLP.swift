import VAEASConfig

/// A stack of `Linear` layers with an activation after each (optionally not
/// after the last), with its activation and gradient buffers allocated once
/// for up to `capacity` rows.
public final class MLP {
    public let layers: [Linear]
    public let activation: Activation
    public let activateLast: Bool
    public let capacity: Int
    /// outputs[k]: output of layer k (after its activation), capacity × out_k.
    public let outputs: [UnsafeMutablePointer<Float>]
    private let scratchA: UnsafeMutablePointer<Float>
    private let scratchB: UnsafeMutablePointer<Float>
    private let arena = Arena()

    /// The layers named `names` in `store` (declared by its `ParameterTable`), in order.
    public init(_ names: [String], store: ParameterStore, activation: Activation, activateLast: Bool, capacity: Int) {
        precondition(!names.isEmpty)
        layers = names.map { Linear($0, store: store) }
        self.activation = activation
        self.activateLast = activateLast
        self.capacity = capacity
        outputs = layers.map { [arena] in arena.floats(capacity * $0.outFeatures) }
        let widest = layers.map { Swift.max($0.inFeatures, $0.outFeatures) }.max()!
        scratchA = arena.floats(capacity * widest)
        scratchB = arena.floats(capacity * widest)
    }

    public var inFeatures: Int { layers.first!.inFeatures }
    public var outFeatures: Int { layers.last!.outFeatures }
    public var output: UnsafeMutablePointer<Float> { outputs.last! }

    private func activated(_ k: Int) -> Bool { k < layers.count - 1 || activateLast }

    public func forward(_ input: UnsafePointer<Float>, rows: Int, params: UnsafePointer<Float>) {
        precondition(rows <= capacity, "MLP: \(rows) rows exceed capacity \(capacity)")
        var x = input
        for (k, layer) in layers.enumerated() {
            Trace.begin("layer forward", name: "\(layer.name) forward")
            layer.forward(outputs[k], x, rows: rows, params: params, activation: activated(k) ? activation : nil)
            x = UnsafePointer(outputs[k])
            Trace.end()
        }
    }

    /// Backward from `dout` (gradient wrt the MLP's output; overwritten) to the
    /// parameters (unless `grads` is nil), and to `dinput` when given.
    /// `layerDone` is called after each layer's parameter gradients are
    /// complete, last layer first (the overlapped gradient reduction's hook).
    public func backward(dout: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int,
                         params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>?,
                         dinput: UnsafeMutablePointer<Float>?, accumulateInput: Bool = false,
                         layerDone: ((Linear) -> Void)? = nil) {
        var d = dout
        for k in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[k]
            Trace.begin("layer backward", name: "\(layer.name) backward")
            defer {
                Trace.end()
                layerDone?(layer)
            }
            // act' and the bias gradient in one sweep over d (the layer then skips its bias pass).
            Kernels.activationBackward(activated(k) ? activation : nil, d, output: outputs[k], rows: rows,
                                       cols: layer.outFeatures, biasGradient: grads.map { $0 + layer.bias })
            let inp = k == 0 ? input : UnsafePointer(outputs[k - 1])
            // Ping-pong between the two scratch buffers; the last step writes dinput.
            let target: UnsafeMutablePointer<Float>? = k == 0 ? dinput : (d == scratchA ? scratchB : scratchA)
            layer.backward(dinp: target, accumulate: k == 0 && accumulateInput, dout: d, inp: inp,
                           rows: rows, params: params, grads: grads, biasDone: true)
            if let t = target, k > 0 { d = t }
        }
    }
}
