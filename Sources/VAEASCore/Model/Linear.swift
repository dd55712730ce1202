import VAEASConfig

/// Fully connected layer y = x Wᵀ + b, W stored `[out, in]` as in `torch.nn.Linear`.
///
/// The layer holds offsets into a `ParameterStore`, not the numbers: forward and
/// backward take the parameter and gradient buffers, llm.c style.
public struct Linear: Sendable {
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Int
    public let bias: Int

    /// The layer `name` of `store` (declared by its `ParameterTable`).
    public init(_ name: String, store: ParameterStore) {
        guard let w = store.slot(named: "\(name).weight"), let b = store.slot(named: "\(name).bias"), w.shape.count == 2 else {
            preconditionFailure("ParameterStore has no Linear '\(name)'")
        }
        self.name = name
        inFeatures = w.shape[1]
        outFeatures = w.shape[0]
        weight = w.offset
        bias = b.offset
    }

    /// Draws W (and b) from a counter-based stream keyed by `tensorID`, so
    /// every rank draws the same values (see `Initialization`).
    public func initialize(_ params: UnsafeMutablePointer<Float>, rng: Philox, tensorID: UInt32,
                           scheme: Initialization = .glorot) {
        let n = inFeatures * outFeatures
        rng.fillUniform(params + weight, count: n, c1: tensorID, c2: 0)
        rng.fillUniform(params + bias, count: outFeatures, c1: tensorID, c2: 1)
        switch scheme {
        case .glorot:
            let bound = (6 / Float(inFeatures + outFeatures)).squareRoot()
            for i in 0..<n { params[weight + i] = (2 * params[weight + i] - 1) * bound }
            for i in 0..<outFeatures { params[bias + i] = 0 }
        case .pytorch:
            let bound = 1 / Float(inFeatures).squareRoot()
            for i in 0..<n { params[weight + i] = (2 * params[weight + i] - 1) * bound }
            for i in 0..<outFeatures { params[bias + i] = (2 * params[bias + i] - 1) * bound }
        }
    }

    /// out[rows × out] = act(inp[rows × in] · Wᵀ + b): the product into `out`,
    /// then bias and activation in one sweep while the rows are in cache
    /// (`Kernels.biasActivation`; `activation` nil: no activation).
    public func forward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, rows: Int,
                        params: UnsafePointer<Float>, activation: Activation? = nil) {
        BLAS.gemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures,
                  a: inp, lda: inFeatures, b: params + weight, ldb: inFeatures,
                  beta: 0, c: out, ldc: outFeatures)
        Kernels.biasActivation(out, bias: params + bias, rows: rows, cols: outFeatures, activation)
    }

    /// dW += doutᵀ · inp, db += Σ_rows dout, and dinp (= or +=) dout · W.
    /// `dinp` nil skips the input gradient (the first layer needs none);
    /// `grads` nil skips the parameter gradients (a path that treats the
    /// layer as fixed, like VAE-AS's Î term through the classifier).
    /// `biasDone`: the caller already added Σ_rows dout into db (MLP fuses it
    /// with the activation's backward, `Kernels.activationBackward`).
    public func backward(dinp: UnsafeMutablePointer<Float>?, accumulate: Bool = false,
                         dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, rows: Int,
                         params: UnsafePointer<Float>, grads: UnsafeMutablePointer<Float>?, biasDone: Bool = false) {
        if let grads {
            BLAS.gemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows,
                      a: dout, lda: outFeatures, b: inp, ldb: inFeatures,
                      beta: 1, c: grads + weight, ldc: inFeatures)
            if !biasDone {
                Kernels.activationBackward(nil, UnsafeMutablePointer(mutating: dout), output: nil, rows: rows,
                                           cols: outFeatures, biasGradient: grads + bias)
            }
        }
        if let dinp {
            BLAS.gemm(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures,
                      a: dout, lda: outFeatures, b: params + weight, ldb: inFeatures,
                      beta: accumulate ? 1 : 0, c: dinp, ldc: inFeatures)
        }
    }

    /// Floating-point operations of forward (2·rows·in·out) and backward
    /// (dW: 2·rows·in·out, dinp: the same again when computed).
    public func flops(rows: Int, inputGradient: Bool) -> (forward: Double, backward: Double) {
        let f = 2 * Double(rows) * Double(inFeatures) * Double(outFeatures)
        return (f, inputGradient ? 2 * f : f)
    }
}
