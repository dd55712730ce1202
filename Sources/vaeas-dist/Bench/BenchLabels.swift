import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig

/// `bench labels`: full against hierarchical softmax over label counts.
struct BenchLabels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labels",
        abstract: "Time the classifier's output layer, full against tree softmax, over label counts.",
        discussion: """
        Each row builds the config's VAE-AS with V labels and one softmax and times --steps training steps: the classifier's time per step (its compute, its collectives and its optimizer update), the whole step, its memory per rank. Tree rows whose config asks for the entropy estimator (which needs all V probabilities) are timed with `ce`, and the table says so. Label counts beyond the training set's size are fine for timing.

        Example:
          vaeas-dist bench labels 1000 10000 50000 --softmax full tree --config configs/mnist-vaeas.yaml --data-dir ../shared/data
        """)

    @OptionGroup var options: ConfigOptions
    @OptionGroup var repeats: BenchRepeats

    @Argument(help: ArgumentHelp("Label counts V to time, e.g. 1000 10000 50000 1000000.", valueName: "V"))
    var labels: [Int]

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("Softmax kinds to compare.", valueName: "kind"))
    var softmax: [SoftmaxKind] = [.full, .tree]

    var steps: Int { repeats.steps }
    var warmup: Int { repeats.warmup }
    var json: Bool { repeats.json }

    func validate() throws {
        if labels.isEmpty { throw ValidationError("give at least one label count V, e.g. bench labels 1000 50000") }
        if let bad = labels.first(where: { $0 < 2 }) { throw ValidationError("\(bad) is not a label count ≥ 2") }
    }

    func run() throws { try sweep() }

    /// Full against hierarchical softmax over label counts: the classifier's
    /// time per step (its compute and its collectives) and its memory per rank,
    /// every row measured in this one run.
    func sweep() throws {
        try Runtime.withCommunicator { comm in
            let counts = labels
            let kinds = softmax
            var rows: [JSONRecord] = []
            var table: [(String, Int, Double, Double, Int, Int, Int)] = []
            var substituted = false
            for v in counts {
                for kind in kinds {
                    var config = try options.resolve()
                    try config.set("eval.every", to: .int(0))
                    try config.set("objective.kind", choice: ObjectiveKind.vaeas)
                    try config.set("objective.labels", to: .int(v))
                    try config.set("objective.softmax", choice: kind)
                    // The tree scores one leaf per row: time it with `ce` when the config asks for
                    // `entropy` (which `validate` would refuse), and say so below.
                    if kind == .tree && config.objective.miEstimator.needsAllProbabilities {
                        try config.set("objective.mi_estimator", choice: MIEstimator.ce)
                        substituted = true
                    }
                    try config.validate()
                    // Each row's own peak (where the kernel allows resetting it; else the run's so far).
                    let peakIsPerRow = Benchmark.resetPeakResident()
                    let data = try Runtime.loadData(config)
                    let step = try DataParallelStep.make(config: config, train: data.train, comm: comm, allowUnusedLabels: true)
                    let b = config.train.batch
                    let perm = step.permutation(epoch: 1)
                    guard perm.count >= b else { throw ValidationError("the training set is smaller than train.batch") }
                    let perEpoch = perm.count / b
                    var before = Trace.totals
                    try perm.withUnsafeBufferPointer { p in
                        for s in 0..<(warmup + steps) {
                            if s == warmup { comm.barrier(); before = Trace.totals }
                            let k = s % perEpoch
                            try step(UnsafeBufferPointer(rebasing: p[(k * b)..<((k + 1) * b)]), epoch: 1)
                        }
                    }
                    let ph = Trace.totals - before
                    let stepMs = ph.stepSplit.reduce(0) { $0 + $1.1 } / Double(steps) * 1e3
                    let classifierMs = comm.max([(ph[.classifier] + ph[.classifierCommunication] + ph[.classifierOptimizer])
                                                 / Double(steps) * 1e3])[0]
                    let sm = step.model.classifier!.output
                    let memory = Int(comm.max([Double(sm.memoryBytes)])[0])
                    let peak = Benchmark.peakResidentBytesPerRank(comm).max() ?? -1
                    var r = JSONRecord()
                    r.set("softmax", kind.rawValue); r.set("labels", v); r.set("ranks", comm.size)
                    r.set("mi_estimator", config.objective.miEstimator.rawValue)
                    r.set("classifier_ms_per_step", classifierMs); r.set("step_ms", stepMs)
                    r.set("layer_memory_bytes_per_rank", memory); r.set("layer_bytes_sent_per_step", sm.bytesSentLastStep)
                    r.set("peak_rss_bytes_max_rank", peak); r.set("peak_rss_is_per_row", peakIsPerRow)
                    rows.append(r)
                    table.append((kind.rawValue, v, classifierMs, stepMs, memory, sm.bytesSentLastStep, peak))
                }
            }
            guard comm.isRoot else { return }
            if json { rows.forEach { print($0.json) }; return }
            print("vaeas-dist bench labels: \(comm.size) rank(s), \(BLAS.threads) BLAS thread(s)/rank, batch \(try options.resolve().train.batch), \(steps) timed steps each")
            if substituted { print("tree rows use objective.mi_estimator=ce: the entropy estimator needs all V probabilities") }
            print("classifier ms/step = its compute + its collectives + the output layer's optimizer update (max over ranks)")
            print("peak memory = the rank's peak resident set (VmHWM) while building and timing the row, max over ranks")
            print("| softmax | V | classifier ms/step | whole step ms | layer memory/rank | layer bytes sent/step | peak memory/rank |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            for t in table {
                print(String(format: "| %@ | %d | %.2f | %.2f | %.1f MiB | %.1f KiB | %.1f MiB |", t.0, t.1, t.2, t.3,
                             Double(t.4) / 1_048_576, Double(t.5) / 1024, Double(t.6) / 1_048_576))
            }
            for v in counts {
                if let f = table.first(where: { $0.0 == "full" && $0.1 == v }), let t = table.first(where: { $0.0 == "tree" && $0.1 == v }) {
                    print(String(format: "V = %d: tree classifier step %.1f× cheaper than full, %.1f× less memory", v, f.2 / t.2, Double(f.4) / Double(t.4)))
                }
            }
        }
    }
}
