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

    /// `widths` = [in, h1, …, out]; layers are named `\(prefix).{i}` except the
    /// last, which is named `lastName` when given (e.g. `decoder.out`).
    public init(prefix: String, widths: [Int], lastName: String? = nil, activation: Activation,
                activateLast: Bool, capacity: Int, store: ParameterStore) {
        precondition(widths.count >= 2)
        var layers: [Linear] = []
        for i in 0..<(widths.count - 1) {
            let isLast = i == widths.count - 2
            let name = isLast && lastName != nil ? lastName! : "\(prefix).\(i)"
            layers.append(Linear(name, in: widths[i], out: widths[i + 1], store: store))
        }
        self.layers = layers
        self.activation = activation
        self.activateLast = activateLast
        self.capacity = capacity
        outputs = layers.map { .allocate(capacity: capacity * $0.outFeatures) }
        let widest = widths.max()!
        scratchA = .allocate(capacity: capacity * widest)
        scratchB = .allocate(capacity: capacity * widest)
    }

    deinit {
        outputs.forEach { $0.deallocate() }
        scratchA.deallocate()
        scratchB.deallocate()
    }

    public var inFeatures: Int { layers.first!.inFeatures }
    public var outFeatures: Int { layers.last!.outFeatures }
    public var output: UnsafeMutablePointer<Float> { outputs.last! }

    private func activated(_ k: Int) -> Bool { k < layers.count - 1 || activateLast }

    public func forward(_ input: UnsafePointer<Float>, rows: Int, params: UnsafePointer<Float>) {
        precondition(rows <= capacity, "MLP: \(rows) rows exceed capacity \(capacity)")
        var x = input
        for (k, layer) in layers.enumerated() {
            layer.forward(outputs[k], x, rows: rows, params: params)
            if activated(k) { Kernels.activationForward(activation, outputs[k], count: rows * layer.outFeatures) }
            x = UnsafePointer(outputs[k])
        }
    }

    /// Backward from `dout` (gradient wrt the MLP's output; overwritten) to the
    /// parameters (unless `grads` is nil), and to `dinput` when given.
    public func backward(dout: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int,
                         params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>?,
                         dinput: UnsafeMutablePointer<Float>?, accumulateInput: Bool = false) {
        var d = dout
        for k in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[k]
            if activated(k) {
                Kernels.activationBackward(activation, d, output: outputs[k], count: rows * layer.outFeatures)
            }
            let inp = k == 0 ? input : UnsafePointer(outputs[k - 1])
            // Ping-pong between the two scratch buffers; the last step writes dinput.
            let target: UnsafeMutablePointer<Float>? = k == 0 ? dinput : (d == scratchA ? scratchB : scratchA)
            layer.backward(dinp: target, accumulate: k == 0 && accumulateInput, dout: d, inp: inp,
                           rows: rows, params: params, grads: grads)
            if let t = target, k > 0 { d = t }
        }
    }

    public func initialize(_ params: UnsafeMutablePointer<Float>, rng: Philox, firstTensorID: UInt32, scheme: Initialization) {
        for (k, layer) in layers.enumerated() {
            layer.initialize(params, rng: rng, tensorID: firstTensorID + UInt32(k), scheme: scheme)
        }
    }
}
