import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time training steps and compare with OpenBLAS sgemm on the same shapes, in one run.",
        discussion: """
        Prints samples/s, the model's matmul FLOPs per sample, the achieved GFLOP/s per rank, and sgemm's
        GFLOP/s on exactly the products of one step (same shapes, same threads, same process).
        ratio = achieved / sgemm: the share of sgemm speed the whole step keeps.
        """)

    @Option(name: .long, help: "YAML config file (the model and batch to time).")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override one key (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    @Option(name: .long, help: "Directory of the dataset's IDX files.")
    var dataDir: String?

    @Option(name: .long, help: "Timed training steps.")
    var steps = 50

    @Option(name: .long, help: "Untimed warm-up steps.")
    var warmup = 5

    @Flag(name: .long, help: "Print the result as one JSON object only.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Sweep the classifier: label counts V to time, e.g. 1000,10000,50000,1000000 (VAE-AS; labels beyond N are fine for timing).", valueName: "V,V,…"))
    var labels: String?

    @Option(name: .long, help: ArgumentHelp("With --labels: softmax kinds to compare.", valueName: "full,tree"))
    var softmax = "full,tree"

    mutating func validate() throws {
        if let labels {
            for v in labels.split(separator: ",") where Int(v) == nil || Int(v)! < 2 {
                throw ValidationError("--labels: '\(v)' is not a label count ≥ 2 (expected e.g. 1000,10000,50000)")
            }
        }
        for s in softmax.split(separator: ",") where s != "full" && s != "tree" {
            throw ValidationError("--softmax: '\(s)' is not one of full, tree")
        }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be at least 0, got \(warmup)") }
    }

    func run() throws {
        if labels != nil { return try sweep() }
        try Runtime.withCommunicator { comm in
            var config = try Runtime.loadConfig(path: self.config, overrides: overrides, dataDir: dataDir)
            try config.set("eval.every", to: .int(0))
            let data = try Runtime.loadData(config)
            let trainer = try Trainer(config: config, train: data.train, test: nil, comm: comm, output: nil)
            let b = config.train.batch
            let perm = trainer.permutation(epoch: 1)
            let stepsPerEpoch = max(1, perm.count / b)
            // Full batches only: a short last batch would change the shapes being timed.
            guard perm.count >= b else {
                throw ValidationError("the training set (\(perm.count) samples) is smaller than train.batch (\(b))")
            }
            func runSteps(_ count: Int, from start: Int) throws {
                try perm.withUnsafeBufferPointer { p in
                    for s in 0..<count {
                        let k = (start + s) % stepsPerEpoch
                        try trainer.step(UnsafeBufferPointer(rebasing: p[(k * b)..<((k + 1) * b)]), epoch: 1)
                    }
                }
            }
            try runSteps(warmup, from: 0)
            comm.barrier()
            trainer.phaseSeconds = PhaseTimes()
            let t0 = DispatchTime.now().uptimeNanoseconds
            try runSteps(steps, from: warmup)
            comm.barrier()
            let seconds = comm.max([Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9])[0]

            let localRows = BlockPartition(total: b, parts: comm.size).count(comm.rank)
            var shapes = Benchmark.stepShapes(trainer.vae, rows: localRows)
            if let c = trainer.classifier {
                let L = config.train.samples
                shapes += Benchmark.classifierShapes(c, localRows: localRows * L, globalRows: b * L,
                                                     withMI: config.objective.alpha != config.objective.beta)
            }
            let stepFlops = shapes.reduce(0) { $0 + $1.flops }
            let sgemmSeconds = Benchmark.sgemmSeconds(shapes, repeats: 5)
            let perRank = comm.sum([stepFlops, sgemmSeconds])
            let flopsPerSample = perRank[0] / Double(b)
            let samplesPerSecond = Double(steps * b) / seconds
            let achieved = perRank[0] * Double(steps) / seconds / 1e9 / Double(comm.size)
            let sgemm = perRank[0] / perRank[1] / 1e9   // per rank, averaged over ranks' time
            let ratio = achieved / sgemm
            if comm.isRoot {
                let m = config.model
                var r = JSONRecord()
                r.set("ranks", comm.size)
                r.set("blas_threads", BLAS.threads)
                r.set("batch", b)
                r.set("samples", config.train.samples)
                r.set("architecture", "enc \(m.encLayers)x\(m.hidden), dec \(m.decLayers)x\(m.hidden), latent \(m.latent), \(m.activation)")
                r.set("parameters", trainer.vae.store.count)
                r.set("steps", steps)
                r.set("seconds", seconds)
                r.set("samples_per_s", samplesPerSecond)
                r.set("step_ms", seconds / Double(steps) * 1e3)
                r.set("flops_per_sample", flopsPerSample)
                r.set("achieved_gflops_per_rank", achieved)
                r.set("sgemm_gflops_per_rank", sgemm)
                r.set("ratio_to_sgemm", ratio)
                for (name, t) in trainer.phaseSeconds.all { r.set("ms_\(name)", t / Double(steps) * 1e3) }
                if let sm = trainer.classifier?.softmax {
                    r.set("labels", sm.labels)
                    r.set("output_layer_bytes_sent_per_step", sm.bytesSentLastStep)
                    r.set("replicated_layer_allreduce_bytes_per_step", 4 * sm.labels * (sm.width + 1))
                    r.set("softmax", config.objective.softmax)
                    r.set("output_layer_rows_per_rank", sm.ownedRows)
                    r.set("output_layer_memory_bytes_per_rank", sm.memoryBytes)
                }
                if json {
                    print(r.json)
                } else {
                    print("""
                    vaeas-dist bench: \(comm.size) rank(s), \(BLAS.threads) BLAS thread(s)/rank, batch \(b), L=\(config.train.samples)
                      model        enc \(m.encLayers)x\(m.hidden), dec \(m.decLayers)x\(m.hidden), latent \(m.latent), \(m.activation), \(trainer.vae.store.count) parameters
                      steps        \(steps) timed (+\(warmup) warm-up), \(String(format: "%.3f", seconds)) s, \(String(format: "%.2f", seconds / Double(steps) * 1e3)) ms/step
                      throughput   \(String(format: "%.0f", samplesPerSecond)) samples/s
                      FLOPs        \(String(format: "%.2f", flopsPerSample / 1e6)) MFLOP/sample (matmuls of forward + backward)
                      achieved     \(String(format: "%.1f", achieved)) GFLOP/s per rank
                      sgemm        \(String(format: "%.1f", sgemm)) GFLOP/s per rank on the same shapes
                      ratio        \(String(format: "%.3f", ratio))  (achieved / sgemm)
                      step split   \(trainer.phaseSeconds.all.map { "\($0.0) \(String(format: "%.2f", $0.1 / Double(steps) * 1e3))" }.joined(separator: ", ")) ms (rank 0)
                    """)
                    if let sm = trainer.classifier?.softmax {
                        func mib(_ b: Int) -> String { String(format: "%.2f MiB", Double(b) / 1_048_576) }
                        print("""
                          classifier   V = \(sm.labels) labels, h = \(sm.width), \(config.objective.softmax) softmax; \(sm.ownedRows) rows (labels or tree nodes) on rank 0
                          layer comm   \(mib(sm.bytesSentLastStep)) sent per step by rank 0 (allgather H, 4 B-vectors, reduce-scatter dH)
                                       vs \(mib(4 * sm.labels * (sm.width + 1))) a replicated V × h layer would allreduce
                          layer memory \(mib(sm.memoryBytes)) on rank 0 (W_r, b_r, gradients, Adam moments, logits, probabilities)
                        """)
                    }
                }
            }
        }
    }

    /// Full against hierarchical softmax over label counts: the classifier's
    /// time per step (its compute and its collectives) and its memory per rank,
    /// every row measured in this one run.
    func sweep() throws {
        try Runtime.withCommunicator { comm in
            let counts = labels!.split(separator: ",").map { Int($0)! }
            let kinds = softmax.split(separator: ",").map(String.init)
            var rows: [JSONRecord] = []
            var table: [(String, Int, Double, Double, Int, Int)] = []
            for v in counts {
                for kind in kinds {
                    var config = try Runtime.loadConfig(path: self.config, overrides: overrides, dataDir: dataDir)
                    try config.set("eval.every", to: .int(0))
                    try config.set("objective.kind", to: .string("vaeas"))
                    try config.set("objective.labels", to: .int(v))
                    try config.set("objective.softmax", to: .string(kind))
                    if kind == "tree" && config.objective.miEstimator == "entropy" {
                        try config.set("objective.mi_estimator", to: .string("ce"))
                    }
                    try config.validate()
                    let data = try Runtime.loadData(config)
                    let trainer = try Trainer(config: config, train: data.train, test: nil, comm: comm, output: nil)
                    let b = config.train.batch
                    let perm = trainer.permutation(epoch: 1)
                    guard perm.count >= b else { throw ValidationError("the training set is smaller than train.batch") }
                    let perEpoch = perm.count / b
                    try perm.withUnsafeBufferPointer { p in
                        for s in 0..<(warmup + steps) {
                            if s == warmup { comm.barrier(); trainer.phaseSeconds = PhaseTimes() }
                            let k = s % perEpoch
                            try trainer.step(UnsafeBufferPointer(rebasing: p[(k * b)..<((k + 1) * b)]), epoch: 1)
                        }
                    }
                    let ph = trainer.phaseSeconds
                    let stepMs = ph.all.reduce(0) { $0 + $1.1 } / Double(steps) * 1e3
                    let classifierMs = comm.max([(ph.classifier + ph.classifierCommunication + ph.classifierOptimizer)
                                                 / Double(steps) * 1e3])[0]
                    let sm = trainer.classifier!.softmax
                    let memory = Int(comm.max([Double(sm.memoryBytes)])[0])
                    var r = JSONRecord()
                    r.set("softmax", kind); r.set("labels", v); r.set("ranks", comm.size)
                    r.set("classifier_ms_per_step", classifierMs); r.set("step_ms", stepMs)
                    r.set("layer_memory_bytes_per_rank", memory); r.set("layer_bytes_sent_per_step", sm.bytesSentLastStep)
                    rows.append(r)
                    table.append((kind, v, classifierMs, stepMs, memory, sm.bytesSentLastStep))
                }
            }
            guard comm.isRoot else { return }
            if json { rows.forEach { print($0.json) }; return }
            print("vaeas-dist bench --labels: \(comm.size) rank(s), \(BLAS.threads) BLAS thread(s)/rank, batch \(try Runtime.loadConfig(path: self.config, overrides: overrides, dataDir: dataDir).train.batch), \(steps) timed steps each")
            print("classifier ms/step = its compute + its collectives + the output layer's optimizer update (max over ranks)")
            print("| softmax | V | classifier ms/step | whole step ms | layer memory/rank | layer bytes sent/step |")
            print("|---|---:|---:|---:|---:|---:|")
            for t in table {
                print(String(format: "| %@ | %d | %.2f | %.2f | %.1f MiB | %.1f KiB |", t.0, t.1, t.2, t.3,
                             Double(t.4) / 1_048_576, Double(t.5) / 1024))
            }
            for v in counts {
                if let f = table.first(where: { $0.0 == "full" && $0.1 == v }), let t = table.first(where: { $0.0 == "tree" && $0.1 == v }) {
                    print(String(format: "V = %d: tree classifier step %.1f× cheaper than full, %.1f× less memory", v, f.2 / t.2, Double(f.4) / Double(t.4)))
                }
            }
        }
    }
}
