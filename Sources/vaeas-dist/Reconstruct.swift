import ArgumentParser
import Foundation
import SafeTensors
import VAEAS
import VAEASData

struct Reconstruct: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a PNG of test or training images next to their reconstructions.",
        discussion: """
        Takes --count images spread over the split (every ⌊n/count⌋-th from the first: some files, such as \
        binarized-MNIST's test set, are sorted by class), binarized statically (pixel ≥ 128), encodes them, \
        decodes the posterior mean z = μ(x) (no sampling, so the picture is deterministic) and shows \
        σ(logits) as grey levels. Rows of --columns originals alternate with the rows of their \
        reconstructions, as in the paper's Figures 4–5. Prints the mean BCE of the reconstructions \
        against the shown originals, in nats per image, and which images were shown and the data directory used. \
        Without --data-dir the data comes from data.dir in the config.yaml beside the checkpoint, then \
        $VAEAS_DATA_DIR, then the dataset's standard location. Runs on rank 0 only.

        Example:
          vaeas-dist reconstruct --checkpoint runs/demo/model.safetensors --split test --count 32 --out recon.png
        """)

    @Option(name: .long, help: "Checkpoint (model.safetensors) written by `vaeas-dist train`.")
    var checkpoint: String

    @Option(name: .long, help: """
        Directory of the dataset's IDX files, the dataset's folder or its parent (default: data.dir in the \
        config.yaml beside the checkpoint, then $VAEAS_DATA_DIR, then the dataset's standard location).
        """)
    var dataDir: String?

    @Option(name: .long, help: "Dataset name: \(DatasetCatalog.names.joined(separator: ", ")) (default: the one the checkpoint was trained on).")
    var dataset: String?

    @Option(name: .long, help: ArgumentHelp("Split to take the images from: train or test (binarized-mnist also has valid).", valueName: "split"))
    var split: String

    @Option(name: .long, help: "Number of images, spread over the split (every ⌊n/count⌋-th; for train, over the checkpoint's training subset).")
    var count = 32

    @Option(name: .long, help: "Images per grid row.")
    var columns = 8

    @Option(name: .long, help: "Output PNG file.")
    var out: String

    mutating func validate() throws {
        try ImageOptions.validate(count: count, columns: columns, out: out)
    }

    func run() throws {
        try Runtime.withCommunicator { comm in
            _ = try comm.rootOnly { try write() }
        }
    }

    private func write() throws {
        let file = try ImageOptions.loadCheckpoint(checkpoint)
        let shape = try Checkpoint.shape(of: file)
        let dataset = self.dataset ?? CheckpointMetadata.datasetName(file.metadata)
        let (loaded, location): (Dataset, DataLocation)
        do {
            (loaded, location) = try CheckpointInput.loadSplit(dataset: dataset, split: split, dataDir: dataDir, checkpoint: checkpoint)
        } catch let e as CheckpointInput.NoDataDirectory { throw ValidationError(e.description) }
        // The training images shown are ones the model was trained on (its data.limit subset), as eval's.
        var data = loaded
        if split == "train", let subset = try CheckpointMetadata(entries: file.metadata, path: file.path).trainedOnSubset,
           subset.limit < loaded.count {
            data = subset.apply(to: loaded)
        }
        guard data.dimension == shape.input else {
            throw ImageError("checkpoint \(checkpoint) has input_dim \(shape.input), but dataset \(dataset) (\(data.split)) "
                             + "has \(data.images.rows)×\(data.images.cols) = \(data.dimension) pixels per image")
        }
        guard count <= data.count else {
            throw ImageError("--count \(count) exceeds the \(data.count) images of \(dataset) \(data.split)")
        }
        let vae = try Checkpoint.vae(from: file, capacity: count)

        let d = shape.input
        let x = UnsafeMutablePointer<Float>.allocate(capacity: count * d)
        defer { x.deallocate() }
        let (_, chosen, subset) = data.spread(count)
        let indices = chosen.map { Int32($0) }
        // Static, so what is shown is exactly what was encoded and scored; the seed is unused.
        let feed = DataFeed(dataset: data, binarization: .static, seed: 0, evaluation: true)
        indices.withUnsafeBufferPointer { feed.fill(x, indices: $0, epoch: 0) }

        vae.encode(x, n: count)
        // ε = 0 makes z = μ; reparameterize also fills the per-image KL.
        let zeroNoise = [Float](repeating: 0, count: count * shape.latent)
        vae.reparameterize(eps: zeroNoise, n: count, samples: 1)
        vae.decode(rows: count)
        vae.reconstruction(x, n: count, samples: 1, gradScale: nil)
        let meanBCE = (0..<count).reduce(0.0) { $0 + vae.recon[$1] } / Double(count)
        let meanKL = (0..<count).reduce(0.0) { $0 + vae.kl[$1] } / Double(count)

        let originals = (0..<count).map { Array(UnsafeBufferPointer(start: x + $0 * d, count: d)) }
        let reconstructions = ImageOptions.decoderMeans(vae, rows: count)
        // Each band is a row of originals, then the row of their reconstructions
        // directly below; a short last band is padded with black tiles so that
        // its reconstructions still start on a new grid row.
        let perRow = min(columns, count)
        let blank = [Float](repeating: 0, count: d)
        var tiles: [[Float]] = []
        for start in stride(from: 0, to: count, by: perRow) {
            let end = min(start + perRow, count)
            tiles += originals[start..<end]
            tiles += Array(repeating: blank, count: perRow - (end - start))
            tiles += reconstructions[start..<end]
        }
        let g = PNG.grid(images: tiles, rows: data.images.rows, cols: data.images.cols, columns: perRow)
        try PNG.writeGray(path: out, width: g.width, height: g.height, pixels: g.pixels)
        print("reconstruct: \(count) \(dataset) \(data.split) images, z = μ, mean BCE \(String(format: "%.2f", meanBCE)) nats "
              + "(KL \(String(format: "%.2f", meanKL))), wrote \(out) (\(g.width)×\(g.height))")
        print("images: \(subset); data from \(location)")
    }
}

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a PNG of decoder means for latent codes drawn from the prior.",
        discussion: """
        Draws z ~ N(0, I) from the counter-based generator (seed --seed, purpose evaluationNoise), decodes \
        it and shows σ(logits), the Bernoulli means, as grey levels. Images are square: the side is \
        √input_dim of the checkpoint. Runs on rank 0 only.

        Example:
          vaeas-dist sample --checkpoint runs/demo/model.safetensors --count 64 --out samples.png
        """)

    @Option(name: .long, help: "Checkpoint (model.safetensors) written by `vaeas-dist train`.")
    var checkpoint: String

    @Option(name: .long, help: "Number of samples.")
    var count = 64

    @Option(name: .long, help: "Images per grid row.")
    var columns = 8

    @Option(name: .long, help: "Seed of the prior draws (0 … 2³²−1).")
    var seed = 0

    @Option(name: .long, help: "Output PNG file.")
    var out: String

    mutating func validate() throws {
        try ImageOptions.validate(count: count, columns: columns, out: out)
        guard seed >= 0, seed <= Int(UInt32.max) else {
            throw ValidationError("--seed must be in 0 … \(UInt32.max), got \(seed)")
        }
    }

    func run() throws {
        try Runtime.withCommunicator { comm in
            _ = try comm.rootOnly { try write() }
        }
    }

    private func write() throws {
        let file = try ImageOptions.loadCheckpoint(checkpoint)
        let shape = try Checkpoint.shape(of: file)
        let side = Int(Double(shape.input).squareRoot().rounded())
        guard side * side == shape.input else {
            throw ImageError("checkpoint \(checkpoint) has input_dim \(shape.input), which is not a square image")
        }
        let vae = try Checkpoint.vae(from: file, capacity: count)

        let rng = Philox(seed: UInt32(seed), purpose: .evaluationNoise)
        let dz = shape.latent
        // The training loop's test-ELBO noise uses this purpose with c2 = epoch; c2 = 2³²−1
        // is an epoch no run reaches, so prior draws never reuse those numbers.
        var codes = [Float](repeating: 0, count: count * dz)
        codes.withUnsafeMutableBufferPointer { z in
            for i in 0..<count { rng.fillNormal(z.baseAddress! + i * dz, count: dz, c1: UInt32(i), c2: UInt32.max) }
        }
        vae.decode(codes, rows: count)
        let images = ImageOptions.decoderMeans(vae, rows: count)
        let g = PNG.grid(images: images, rows: side, cols: side, columns: min(columns, count))
        try PNG.writeGray(path: out, width: g.width, height: g.height, pixels: g.pixels)
        print("sample: \(count) draws of z ~ N(0, I) (seed \(seed)), wrote \(out) (\(g.width)×\(g.height))")
    }
}

/// What `reconstruct` and `sample` share.
enum ImageOptions {
    /// The most images one PNG grid holds (100 × 100 MNIST tiles: about 3000 × 3000
    /// pixels, 3000 × 6000 with reconstructions), so that --count never sizes a huge
    /// allocation.
    static let maxCount = 10_000

    static func validate(count: Int, columns: Int, out: String) throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
        guard count <= maxCount else {
            throw ValidationError("--count must be at most \(maxCount) (the images of one PNG grid), got \(count)")
        }
        guard columns >= 1 else { throw ValidationError("--columns must be at least 1, got \(columns)") }
        guard out.lowercased().hasSuffix(".png") else {
            throw ValidationError("--out \(out): expected a file name ending in .png")
        }
    }

    /// A missing file gets its own message: SafeTensors' read error is about
    /// the format, and "not found" is the likelier mistake here. (A directory
    /// exists, and SafeTensors names it as a directory.)
    static func loadCheckpoint(_ path: String) throws -> SafeTensorsFile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ImageError("\(path): checkpoint file not found (expected a model.safetensors written by `vaeas-dist train`)")
        }
        return try SafeTensorsFile.load(path: path)
    }

    /// σ(logits) of the decoder's first `rows` rows, one image each.
    static func decoderMeans(_ vae: VAE, rows: Int) -> [[Float]] {
        let d = vae.shape.input
        let logits = vae.decoder.output
        return (0..<rows).map { r in
            (0..<d).map { p in 1 / (1 + expf(-logits[r * d + p])) }
        }
    }
}

struct ImageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
