import VAEASConfig

/// The replicated parameters of a model, declared once: every `Linear` with
/// its name (the checkpoint's and `torch.nn.Linear`'s), shape and the counter
/// stream its initial values are drawn from. `ParameterStore(table)` lays them
/// out in this order in one flat buffer (the fused gradient buffer the
/// data-parallel step allreduces); `initialize` fills them.
///
/// The partitioned output layer is not here: its rows are split over ranks and
/// each rank's shard is its own store (`PartitionedSoftmax`,
/// `PartitionedTreeSoftmax`), drawn from `InitStream.classifierOut`.
public struct ParameterTable: Sendable {
    public struct Entry: Sendable, Equatable {
        /// Prefix of the two tensors `\(name).weight` [out, in] and `\(name).bias` [out].
        public let name: String
        public let inFeatures: Int
        public let outFeatures: Int
        /// Philox counter c1 of this layer's initial values (purpose `.parameterInit`).
        public let initStream: UInt32

        public init(name: String, inFeatures: Int, outFeatures: Int, initStream: UInt32) {
            self.name = name; self.inFeatures = inFeatures; self.outFeatures = outFeatures; self.initStream = initStream
        }
    }

    public private(set) var entries: [Entry] = []

    public init(_ entries: [Entry] = []) { self.entries = entries }

    public static func + (a: ParameterTable, b: ParameterTable) -> ParameterTable { ParameterTable(a.entries + b.entries) }

    /// Encoder (`enc_layers` hidden layers, then the μ and log σ² heads) and
    /// decoder (`dec_layers` hidden layers, then the Bernoulli logits).
    public static func vae(_ shape: VAEShape) -> ParameterTable {
        let h = shape.hidden, d = shape.latent
        var t = ParameterTable()
        for k in 0..<shape.encoderLayers {
            t.entries.append(Entry(name: "encoder.layers.\(k)", inFeatures: k == 0 ? shape.input : h, outFeatures: h,
                                   initStream: InitStream.encoderLayers + UInt32(k)))
        }
        t.entries.append(Entry(name: "encoder.mu", inFeatures: h, outFeatures: d, initStream: InitStream.encoderMu))
        t.entries.append(Entry(name: "encoder.logvar", inFeatures: h, outFeatures: d, initStream: InitStream.encoderLogvar))
        for k in 0..<shape.decoderLayers {
            t.entries.append(Entry(name: "decoder.layers.\(k)", inFeatures: k == 0 ? d : h, outFeatures: h,
                                   initStream: InitStream.decoderLayers + UInt32(k)))
        }
        t.entries.append(Entry(name: "decoder.out", inFeatures: shape.decoderLayers == 0 ? d : h, outFeatures: shape.input,
                               initStream: InitStream.decoderLayers + UInt32(shape.decoderLayers)))
        return t
    }

    /// The VAE-AS classifier's replicated hidden layers (z → h).
    public static func classifierHidden(latent: Int, width: Int, layers: Int) -> ParameterTable {
        ParameterTable((0..<layers).map {
            Entry(name: "classifier.layers.\($0)", inFeatures: $0 == 0 ? latent : width, outFeatures: width,
                  initStream: InitStream.classifierLayers + UInt32($0))
        })
    }

    /// The entries whose names start with `prefix` (e.g. "encoder.layers."), in order.
    public func entries(prefix: String) -> [Entry] { entries.filter { $0.name.hasPrefix(prefix) } }

    /// Deterministic initial values from `seed`: the same on every rank and at any rank count.
    public func initialize(_ store: ParameterStore, seed: UInt32, scheme: Initialization) {
        let rng = Philox(seed: seed, purpose: .parameterInit)
        for e in entries { Linear(e.name, store: store).initialize(store.values, rng: rng, tensorID: e.initStream, scheme: scheme) }
    }
}

/// Philox counter streams (c1) of the initial values, one per layer, so that
/// adding a layer never shifts another layer's numbers. Layer k of a stack
/// uses its base + k.
public enum InitStream {
    public static let encoderLayers: UInt32 = 0
    public static let encoderMu: UInt32 = 100
    public static let encoderLogvar: UInt32 = 101
    /// Decoder hidden layers, then `decoder.out` at base + dec_layers.
    public static let decoderLayers: UInt32 = 200
    public static let classifierLayers: UInt32 = 300
    /// The partitioned output layer: row (or tree node) e uses counter (400, e).
    public static let classifierOut: UInt32 = 400
}
