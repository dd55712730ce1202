// `vaeas-mpi-check step-dump --data-dir DIR --out DIR [--steps N] [--set key=value ...]`
//
// One training step's inputs, losses and gradients, for scripts/torch_crosscheck.py
// (llm.c's test_gpt2: the same step recomputed by PyTorch autograd). Single
// process (LocalCommunicator). Writes
//   OUT/model.safetensors  the initial checkpoint (`VAEASModel.checkpointWriter`);
//   OUT/step.safetensors   float32: input.x [B, 784] (the binarized inputs as fed),
//                          input.eps [B·L, D] (row i·L + l), input.labels [B·L] (VAE-AS),
//                          loss.recon, loss.kl, loss.objective (and loss.ce, loss.hhat
//                          for VAE-AS): batch means, [1] each; and grad.<name> for
//                          every parameter, in the checkpoint's names and layout.
// The batch is the first train.batch indices of epoch 1's permutation. `--steps N`
// (default 0) first takes N optimizer steps on that batch, so that the checkpoint is
// a trained model: at initialisation the classifier is near uniform, where the Fano
// estimator's Î gradient vanishes (h(P) + P log(V−1) peaks at P = 1 − 1/V).
import Foundation
import SafeTensors
import VAEAS
import VAEASConfig
import VAEASData

func stepDump(_ arguments: [String]) -> Int32 {
    let usage = "usage: vaeas-mpi-check step-dump --data-dir DIR --out DIR [--steps N] [--set section.key=value ...]"
    var dataDir: String?, out: String?, overrides: [String] = [], steps = 0
    var k = 0
    while k < arguments.count {
        guard k + 1 < arguments.count, ["--data-dir", "--out", "--set", "--steps"].contains(arguments[k]),
              arguments[k] != "--steps" || Int(arguments[k + 1]) != nil else {
            FileHandle.standardError.write(Data("step-dump: unexpected '\(arguments[k])'\n\(usage)\n".utf8))
            return 2
        }
        switch arguments[k] {
        case "--data-dir": dataDir = arguments[k + 1]
        case "--out": out = arguments[k + 1]
        case "--steps": steps = Int(arguments[k + 1])!
        default: overrides.append(arguments[k + 1])
        }
        k += 2
    }
    guard let dataDir, let out else {
        FileHandle.standardError.write(Data("step-dump: --data-dir and --out are required\n\(usage)\n".utf8))
        return 2
    }
    do {
        var config = TrainConfig.defaults
        for o in overrides { try config.set(o) }
        try config.set("data.dir", to: .string(dataDir))
        try config.validate()
        let train = TrainingSubset(config.data)
            .apply(to: try DatasetCatalog.load(name: config.data.name, split: "train", directory: dataDir))
        let step = try DataParallelStep.make(config: config, train: train, comm: LocalCommunicator())
        let model = step.model
        let batch = Array(step.permutation(epoch: 1).prefix(config.train.batch))
        for _ in 0..<steps { try batch.withUnsafeBufferPointer { _ = try step($0, epoch: 1) } }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var metadata = CheckpointMetadata(model: model.spec, dataset: config.data.name, binarize: config.data.binarize,
                                          trainSamples: train.count)
        metadata.trainSubset = config.data.limit > 0 ? TrainingSubset(config.data) : nil
        try model.checkpointWriter(metadata: metadata)!.write(to: out + "/model.safetensors")
        let (stats, _) = batch.withUnsafeBufferPointer { step.computeGradients($0, epoch: 1) }
        let b = batch.count, L = config.train.samples, d = config.model.latent, dim = train.dimension
        // The step's inputs for this (batch, epoch), redrawn: both are functions of the sample index.
        var x = [Float](repeating: 0, count: b * dim), eps = [Float](repeating: 0, count: b * L * d)
        batch.withUnsafeBufferPointer { idx in
            x.withUnsafeMutableBufferPointer { step.feed.fill($0.baseAddress!, indices: idx, epoch: 1) }
            eps.withUnsafeMutableBufferPointer { step.forward.noise.fill($0.baseAddress!, indices: idx, epoch: 1) }
        }
        var w = SafeTensorsWriter()
        w.metadata = ["format": "vaeas-step-dump/1", "epoch": "1", "batch": "\(b)", "samples": "\(L)", "steps_before": "\(steps)",
                      "indices": batch.map(String.init).joined(separator: ",")]
        try w.add("input.x", shape: [b, dim], data: x)
        try w.add("input.eps", shape: [b * L, d], data: eps)
        try w.add("loss.recon", shape: [1], data: [Float(stats.recon / Double(stats.count))])
        try w.add("loss.kl", shape: [1], data: [Float(stats.kl / Double(stats.count))])
        // recon + α·Î + β·MD̂ (for `vae`, recon + KL): the value whose gradients follow.
        try w.add("loss.objective", shape: [1], data: [Float(model.objective.value(stats).objective)])
        var stores = [model.parameters]
        if let classifier = model.classifier, let labels = model.labels {
            try w.add("input.labels", shape: [b * L],
                      data: batch.flatMap { i in Array(repeating: Float(labels.label(of: i)), count: L) })
            try w.add("loss.ce", shape: [1], data: [Float(stats.crossEntropy / Double(stats.rows))])
            try w.add("loss.hhat", shape: [1], data: [Float(stats.hHat / Double(stats.rows))])
            // At one rank the local rows are the whole layer: label order (full softmax) or
            // preorder (tree; no replicated top, one unit rooted at node 0). Checked here:
            // the store must equal the gathered checkpoint tensors, name for name.
            let sm = classifier.output
            for t in sm.gatheredTensors() ?? [] {
                guard let slot = sm.store.slot(named: t.name), slot.shape == t.shape,
                      Array(UnsafeBufferPointer(start: sm.store.values + slot.offset, count: slot.count)) == t.data
                else { throw CheckpointError(path: out, message: "\(t.name): local rows are not in checkpoint order") }
            }
            stores.append(sm.store)
        }
        for store in stores {
            for slot in store.slots {
                try w.add("grad." + slot.name, shape: slot.shape,
                          data: UnsafeBufferPointer(start: store.grads + slot.offset, count: slot.count))
            }
        }
        try w.write(to: out + "/step.safetensors")
        print("step-dump: \(out)/model.safetensors, \(out)/step.safetensors (batch \(b), L \(L))")
        return 0
    } catch {
        FileHandle.standardError.write(Data("step-dump: error: \(error)\n".utf8))
        return 1
    }
}
