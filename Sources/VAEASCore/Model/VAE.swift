import VAEASConfig
#if canImport(Glibc)
import Glibc
#endif

/// Sizes of the VAE (`model.*` in the config).
public struct VAEShape: Sendable, Equatable, Codable {
    public var input: Int
    public var latent: Int
    public var hidden: Int
    public var encoderLayers: Int
    public var decoderLayers: Int
    public var activation: Activation

    public init(input: Int, latent: Int, hidden: Int, encoderLayers: Int, decoderLayers: Int, activation: Activation) {
        self.input = input; self.latent = latent; self.hidden = hidden
        self.encoderLayers = encoderLayers; self.decoderLayers = decoderLayers; self.activation = activation
    }
}

/// Gaussian-encoder, Bernoulli-decoder VAE (design doc, "Per-sample terms").
///
/// Encoder: `enc_layers` hidden layers, then two heads μ and log σ² (D each).
/// Decoder: `dec_layers` hidden layers, then 784 Bernoulli logits.
/// One step is `encode` → `reparameterize(eps:)` → `decode` → `reconstruction`
/// → `backward`; an auxiliary head (the VAE-AS classifier) reads `z` between
/// `reparameterize` and `backward` and hands its gradient wrt z to `backward`.
/// The caller owns the inputs (x and ε); the VAE owns its activations.
public final class VAE {
    public let shape: VAEShape
    /// Encoder and decoder parameters (and, in a VAE-AS model, the classifier's
    /// hidden layers): replicated on every rank.
    public let store: ParameterStore
    public let encoder: MLP
    public let muHead: Linear
    public let logvarHead: Linear
    public let decoder: MLP
    /// Data points per call, and reparameterisation samples per data point.
    public let capacity: Int
    public let samplesCapacity: Int

    /// Activations of the last forward (read-only for callers).
    public let mu: UnsafeMutablePointer<Float>        // capacity × D
    public let logvar: UnsafeMutablePointer<Float>    // capacity × D
    public let z: UnsafeMutablePointer<Float>         // capacity·L × D
    let dz: UnsafeMutablePointer<Float>               // capacity·L × D
    let dmu: UnsafeMutablePointer<Float>
    let dlogvar: UnsafeMutablePointer<Float>
    let dlogits: UnsafeMutablePointer<Float>          // capacity·L × input
    let dh: UnsafeMutablePointer<Float>               // capacity × hidden
    /// −log p(x | z) for each of the capacity·L rows of the last `reconstruction`.
    public let rowNLL: UnsafeMutablePointer<Double>
    /// Per data point: −(1/L) Σ_l log p(x|z_l) and the analytic KL(q(z|x) ‖ p(z)).
    public let recon: UnsafeMutablePointer<Double>
    public let kl: UnsafeMutablePointer<Double>
    private let arena = Arena()

    /// The VAE over `store`, which holds (at least) `ParameterTable.vae(shape)`;
    /// activations for `capacity` data points × `samples` draws.
    public init(shape: VAEShape, capacity: Int, samples: Int, store: ParameterStore) {
        self.shape = shape
        self.capacity = capacity
        samplesCapacity = samples
        self.store = store
        let table = ParameterTable.vae(shape)
        let h = shape.hidden, d = shape.latent
        encoder = MLP(table.entries(prefix: "encoder.layers.").map(\.name), store: store,
                      activation: shape.activation, activateLast: true, capacity: capacity)
        muHead = Linear("encoder.mu", store: store)
        logvarHead = Linear("encoder.logvar", store: store)
        decoder = MLP(table.entries(prefix: "decoder.").map(\.name), store: store,
                      activation: shape.activation, activateLast: false, capacity: capacity * samples)
        let rowsL = capacity * samples
        mu = arena.floats(capacity * d)
        logvar = arena.floats(capacity * d)
        dmu = arena.floats(capacity * d)
        dlogvar = arena.floats(capacity * d)
        z = arena.floats(rowsL * d)
        dz = arena.floats(rowsL * d)
        dlogits = arena.floats(rowsL * shape.input)
        dh = arena.floats(capacity * h)
        rowNLL = arena.doubles(rowsL)
        recon = arena.doubles(capacity)
        kl = arena.doubles(capacity)
    }

    /// A stand-alone VAE with its own parameters (evaluation, tests), initialised from `seed`.
    public convenience init(shape: VAEShape, capacity: Int, samples: Int, seed: UInt32 = 0,
                            initialization: Initialization = .glorot) {
        let table = ParameterTable.vae(shape)
        let store = ParameterStore(table)
        table.initialize(store, seed: seed, scheme: initialization)
        self.init(shape: shape, capacity: capacity, samples: samples, store: store)
    }

    /// μ(x), log σ²(x) for `n` rows of x.
    public func encode(_ x: UnsafePointer<Float>, n: Int) {
        let p = UnsafePointer(store.values)
        encoder.forward(x, rows: n, params: p)
        Trace.span("encoder.mu+logvar forward") {
            muHead.forward(mu, encoder.output, rows: n, params: p)
            logvarHead.forward(logvar, encoder.output, rows: n, params: p)
        }
    }

    /// z_{i,l} = μ_i + exp(½ log σ²_i) ⊙ ε_{i,l}, from `eps` (row i·L + l), and
    /// KL_i = ½ Σ_d (μ² + σ² − log σ² − 1).
    public func reparameterize(eps: UnsafePointer<Float>, n: Int, samples L: Int) {
        let d = shape.latent
        for i in 0..<n {
            var k: Double = 0
            for j in 0..<d {
                let m = mu[i * d + j], lv = logvar[i * d + j]
                let s = expf(0.5 * lv)
                k += Double(m * m + s * s - lv - 1)
                for l in 0..<L {
                    let r = (i * L + l) * d + j
                    z[r] = m + s * eps[r]
                }
            }
            kl[i] = 0.5 * k
        }
    }

    /// Bernoulli logits for the n·L rows of z, into `decoder.output`.
    public func decode(rows: Int) {
        decoder.forward(z, rows: rows, params: UnsafePointer(store.values))
    }

    /// Bernoulli logits for given latent codes (e.g. prior draws), into `decoder.output`.
    public func decode(_ codes: UnsafePointer<Float>, rows: Int) {
        decoder.forward(codes, rows: rows, params: UnsafePointer(store.values))
    }

    /// recon_i = (1/L) Σ_l Σ_p BCE(logit, x); with `gradScale` s also
    /// dlogits = s/L · (σ(ℓ) − x), ready for `backward`.
    public func reconstruction(_ x: UnsafePointer<Float>, n: Int, samples L: Int, gradScale: Float?) {
        Kernels.bernoulliNLL(logits: decoder.output, targets: x, rows: n * L, cols: shape.input,
                             targetRepeat: L, rowLoss: rowNLL,
                             dlogits: gradScale == nil ? nil : dlogits, scale: (gradScale ?? 0) / Float(L))
        for i in 0..<n {
            var s: Double = 0
            for l in 0..<L { s += rowNLL[i * L + l] }
            recon[i] = s / Double(L)
        }
    }

    /// Gradients of  s · Σ_i (recon_i + klWeight · KL_i)  (+ whatever `extraDz`
    /// carries, already scaled) wrt the encoder and decoder parameters,
    /// accumulated into `store.grads`. `gradScale` s must match the one given to
    /// `reconstruction`; for the data-parallel mean it is 1/B_global.
    /// `eps` must be the noise given to `reparameterize`. `layerDone` is
    /// called once per Linear as soon as its gradients are complete (decoder's
    /// last layer first, the encoder's first layer last).
    public func backward(_ x: UnsafePointer<Float>, eps: UnsafePointer<Float>, n: Int, samples L: Int, gradScale: Float,
                         klWeight: Float = 1, extraDz: UnsafePointer<Float>? = nil,
                         layerDone: ((Linear) -> Void)? = nil) {
        let p = UnsafePointer(store.values), g = store.grads
        let d = shape.latent, rows = n * L
        decoder.backward(dout: dlogits, input: z, rows: rows, params: p, grads: g, dinput: dz, layerDone: layerDone)
        Trace.begin("reparameterization+encoder.mu+logvar backward")
        if let extraDz { for r in 0..<(rows * d) { dz[r] += extraDz[r] } }
        let ks = klWeight * gradScale
        for i in 0..<n {
            for j in 0..<d {
                let m = mu[i * d + j], lv = logvar[i * d + j]
                let s = expf(0.5 * lv)
                var gm: Float = 0, gs: Float = 0
                for l in 0..<L {
                    let r = (i * L + l) * d + j
                    gm += dz[r]
                    gs += dz[r] * eps[r]
                }
                // dz/dlogvar = ½ σ ε;  dKL/dμ = μ,  dKL/dlogvar = ½(σ² − 1)
                dmu[i * d + j] = gm + ks * m
                dlogvar[i * d + j] = 0.5 * s * gs + ks * 0.5 * (s * s - 1)
            }
        }
        let h = UnsafePointer(encoder.output)
        muHead.backward(dinp: dh, dout: dmu, inp: h, rows: n, params: p, grads: g)
        logvarHead.backward(dinp: dh, accumulate: true, dout: dlogvar, inp: h, rows: n, params: p, grads: g)
        Trace.end()
        layerDone?(muHead)
        layerDone?(logvarHead)
        encoder.backward(dout: dh, input: x, rows: n, params: p, grads: g, dinput: nil, layerDone: layerDone)
    }

    /// Every Linear in forward order, with the rows it sees per data point and
    /// whether its input gradient is computed (for FLOP counts and the sgemm reference).
    public var linearLayers: [(layer: Linear, rowsPerSample: Int, inputGradient: Bool)] {
        var out: [(Linear, Int, Bool)] = []
        for (k, l) in encoder.layers.enumerated() { out.append((l, 1, k > 0)) }
        out.append((muHead, 1, true)); out.append((logvarHead, 1, true))
        for l in decoder.layers { out.append((l, samplesCapacity, true)) }
        return out
    }
}
