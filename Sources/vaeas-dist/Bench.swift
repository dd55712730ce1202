import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time training steps and compare with the BLAS's sgemm on the same shapes, in one run.",
        discussion: """
        Prints samples/s, the model's matmul FLOPs per sample, the achieved GFLOP/s per rank, and sgemm's GFLOP/s on exactly the products of one step (same shapes, same threads, same process), with ratio = achieved / sgemm, the share of sgemm's speed the whole step keeps. Because that ratio hides a slow BLAS, sgemm is also given as a fraction of the cores' nominal peak (vector width × FMA units × clock, from /proc/cpuinfo), with the BLAS library, its version and kernel, and the CPU. Also each rank's peak memory (peak resident set, VmHWM: JSON peak_rss_bytes_*).

        With --gemm, times the BLAS alone on the step's products (the VAE's at batch 128 and 64, the classifier's output layer at V = 1000 and 50000) at each --threads count: how scripts/blas_table.py compares libraries (VAEAS_BLAS).

        With --labels, times the classifier's output layer instead, full against tree, over label counts; tree rows whose config asks for the entropy estimator (which needs all V probabilities) are timed with `ce`, and the table says so.

        With --collectives, times the collectives the trainer issues (allreduce, allgather, reduce-scatter) over message sizes instead, as nccl-tests and the OSU benchmarks do: the input of the α–β model in `scripts/scaling.py project`.

        Examples:
          mpirun -n 2 vaeas-dist bench --config configs/mnist-vae.yaml --data-dir ../shared/data
          vaeas-dist bench --config configs/mnist-vaeas.yaml --data-dir ../shared/data --labels 1000,50000 --softmax full,tree
          mpirun -n 2 vaeas-dist bench --collectives --bytes 4,1K,64K,4M,64M
          VAEAS_BLAS=openblas vaeas-dist bench --gemm --config configs/mnist-vaeas.yaml --threads 1,2
        """)

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Timed training steps.")
    var steps = 50

    @Option(name: .long, help: "Untimed warm-up steps.")
    var warmup = 5

    @Flag(name: .long, help: "Print the result as one JSON object only.")
    var json = false

    @OptionGroup var timelineOptions: TimelineOptions

    @Option(name: .long, help: ArgumentHelp("Sweep the classifier: label counts V to time, e.g. 1000,10000,50000,1000000 (VAE-AS; labels beyond N are fine for timing).", valueName: "V,V,…"))
    var labels: String?

    @Option(name: .long, parsing: .upToNextOption,
            help: ArgumentHelp("With --labels: softmax kinds to compare (space- or comma-separated).", valueName: "full,tree"))
    var softmax: [String] = ["full", "tree"]

    @Flag(name: .long, help: "Time the BLAS library alone on the step's products instead of training steps: the model's forward and backward products at batch 128 and 64, and the classifier's output layer at V = 1000 and 50000, at each --threads count, as GFLOP/s and as a fraction of the core's nominal peak. The input of scripts/blas_table.py, which compares libraries (VAEAS_BLAS).")
    var gemm = false

    @Option(name: .long, help: ArgumentHelp("With --gemm: BLAS thread counts to time.", valueName: "n,n,…"))
    var threads: String = "1,2"

    @Flag(name: .long, help: "Time the collectives over message sizes (--bytes) instead of training steps.")
    var collectives = false

    @Option(name: .long, help: ArgumentHelp("With --collectives: message sizes in bytes, K/M/G suffixes (binary) allowed; for allgather the gathered bytes, for reduce-scatter the input's. (default: 4 to 64M by factors of 4)", valueName: "n,n,…"))
    var bytes: String?

    @Option(name: .long, help: ArgumentHelp("With --collectives: timed calls per size (default: 200 for small messages down to 5 for 64 MiB).", valueName: "n"))
    var iterations: Int?

    /// --bytes as byte counts ("64K" = 65536).
    static func parseBytes(_ text: String) -> [Int]? {
        var out: [Int] = []
        for item in text.split(separator: ",") {
            var digits = item.trimmingCharacters(in: .whitespaces).uppercased()
            var unit = 1
            if let last = digits.last, let shift = ["K": 10, "M": 20, "G": 30][String(last)] {
                unit = 1 << shift; digits.removeLast()
            }
            guard let n = Int(digits), n * unit >= 4 else { return nil }
            out.append(n * unit)
        }
        return out.isEmpty ? nil : out
    }

    /// --softmax as typed kinds.
    var softmaxKinds: [SoftmaxKind] {
        softmax.flatMap { $0.split(separator: ",") }.compactMap { SoftmaxKind(rawValue: String($0)) }
    }

    mutating func validate() throws {
        if let labels {
            for v in labels.split(separator: ",") where Int(v) == nil || Int(v)! < 2 {
                throw ValidationError("--labels: '\(v)' is not a label count ≥ 2 (expected e.g. 1000,10000,50000)")
            }
        }
        for s in softmax.flatMap({ $0.split(separator: ",") }) where SoftmaxKind(rawValue: String(s)) == nil {
            throw ValidationError("--softmax: '\(s)' is not one of " + SoftmaxKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if let bytes, Bench.parseBytes(bytes) == nil {
            throw ValidationError("--bytes: '\(bytes)' is not a list of sizes ≥ 4 bytes (expected e.g. 4,1K,64K,4M)")
        }
        if (bytes != nil || iterations != nil) && !collectives {
            throw ValidationError("--bytes and --iterations apply to --collectives only")
        }
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
        if collectives && (labels != nil || timelineOptions.timeline != nil) {
            throw ValidationError("--collectives times the collectives alone; it does not combine with --labels or --timeline")
        }
        if labels != nil && timelineOptions.timeline != nil {
            throw ValidationError("--timeline times training steps; it does not apply to the --labels sweep")
        }
        if gemm && (collectives || labels != nil || timelineOptions.timeline != nil) {
            throw ValidationError("--gemm times the BLAS alone; it does not combine with --collectives, --labels or --timeline")
        }
        if threads.split(separator: ",").contains(where: { Int($0).map { $0 < 1 } ?? true }) {
            throw ValidationError("--threads: '\(threads)' is not a list of thread counts ≥ 1 (expected e.g. 1,2)")
        }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be at least 0, got \(warmup)") }
    }

    func run() throws {
        if collectives { return try collectiveSweep() }
        if gemm { return try gemmSuite() }
        if labels != nil { return try sweep() }
        try Runtime.withCommunicator { comm in
            var config = try options.resolve()
            try config.set("eval.every", to: .int(0))
            let data = try Runtime.loadData(config)
            // Timing only: labels beyond N (V = 10⁵, 10⁶ on MNIST) are fine, as in the --labels sweep.
            let step = try DataParallelStep.make(config: config, train: data.train, comm: comm, allowUnusedLabels: true)
            let b = config.train.batch
            let perm = step.permutation(epoch: 1)
            let stepsPerEpoch = max(1, perm.count / b)
            // Full batches only: a short last batch would change the shapes being timed.
            guard perm.count >= b else {
                throw ValidationError("the training set (\(perm.count) samples) is smaller than train.batch (\(b))")
            }
            func runSteps(_ count: Int, from start: Int) throws {
                try perm.withUnsafeBufferPointer { p in
                    for s in 0..<count {
                        let k = (start + s) % stepsPerEpoch
                        try step(UnsafeBufferPointer(rebasing: p[(k * b)..<((k + 1) * b)]), epoch: 1)
                    }
                }
            }
            step.timeline = timelineOptions.writer(comm: comm, defaultWindow: (warmup + 1)...(warmup + min(steps, 10)))
            try runSteps(warmup, from: 0)
            comm.barrier()
            step.phases = PhaseTimes()
            let t0 = DispatchTime.now().uptimeNanoseconds
            try runSteps(steps, from: warmup)
            comm.barrier()
            let seconds = comm.max([Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9])[0]
            try step.timeline?.finish()
            // Exposed gradient-reduction time, averaged over ranks (every rank waits its own).
            let gradient = comm.sum([step.phases.gradientExposed, step.phases.gradientInFlight, step.phases.communication])
                .map { $0 / Double(comm.size) / Double(steps) * 1e3 }

            let reductionText = config.train.zeroStage == 1 ? "ZeRO-1 reduce-scatter + allgather"
                : config.train.bucketMB > 0 ? "\(step.bucketCount) bucket(s) of ≤ \(config.train.bucketMB) MiB, MPI_Iallreduce during backward"
                : "one blocking allreduce"
            let localRows = BlockPartition(total: b, parts: comm.size).count(comm.rank)
            var shapes = Benchmark.stepShapes(step.model.vae, rows: localRows)
            if let c = step.model.classifier {
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
            let peaks = Benchmark.peakResidentBytesPerRank(comm)
            if comm.isRoot {
                let m = config.model
                var r = JSONRecord()
                r.set("ranks", comm.size)
                r.set("blas_threads", BLAS.threads)
                r.setPlatform()
                r.set("batch", b)
                r.set("samples", config.train.samples)
                r.set("architecture", "enc \(m.encLayers)x\(m.hidden), dec \(m.decLayers)x\(m.hidden), latent \(m.latent), \(m.activation.rawValue)")
                r.set("parameters", step.model.parameters.count)
                r.set("steps", steps)
                r.set("seconds", seconds)
                r.set("samples_per_s", samplesPerSecond)
                r.set("step_ms", seconds / Double(steps) * 1e3)
                r.set("flops_per_sample", flopsPerSample)
                r.set("achieved_gflops_per_rank", achieved)
                r.set("sgemm_gflops_per_rank", sgemm)
                r.set("ratio_to_sgemm", ratio)
                let peak = CPUInfo.current.peakGFLOPSPerCore.map { $0 * Double(BLAS.threads) }
                if let peak { r.set("sgemm_fraction_of_peak", sgemm / peak) }
                for (name, t) in step.phases.all { r.set("ms_\(name)", t / Double(steps) * 1e3) }
                r.set("bucket_mb", config.train.bucketMB)
                r.set("zero_stage", config.train.zeroStage)
                r.set("gradient_buckets", step.bucketCount)
                r.set("gradient_bytes_per_step", 4 * step.model.parameters.count)
                r.set("ms_gradient_reduction_exposed", gradient[0])
                r.set("ms_gradient_reduction_in_flight", gradient[1])
                r.set("ms_communication_exposed", gradient[2])
                r.set("ms_communication_total", gradient[2] - gradient[0] + gradient[1])
                r.set("optimizer_state_bytes_per_rank", step.optimizerStateBytes)
                // Peak resident memory (VmHWM) of each rank's whole process: set-up, data and the timed steps.
                r.set("peak_rss_bytes_max_rank", peaks.max() ?? -1)
                r.set("peak_rss_bytes_all_ranks", peaks.reduce(0) { $0 + max($1, 0) })
                r.set("peak_rss_bytes_per_rank", peaks.map(String.init).joined(separator: ","))
                if let sm = step.model.classifier?.output {
                    r.set("labels", sm.labels)
                    r.set("output_layer_bytes_sent_per_step", sm.bytesSentLastStep)
                    r.set("replicated_layer_allreduce_bytes_per_step", 4 * sm.labels * (sm.width + 1))
                    r.set("softmax", config.objective.softmax.rawValue)
                    r.set("output_layer_rows_per_rank", sm.ownedRows)
                    r.set("output_layer_memory_bytes_per_rank", sm.memoryBytes)
                }
                if json {
                    print(r.json)
                } else {
                    print("""
                    vaeas-dist bench: \(comm.size) rank(s), \(BLAS.threads) BLAS thread(s)/rank, batch \(b), L=\(config.train.samples)
                      model        enc \(m.encLayers)x\(m.hidden), dec \(m.decLayers)x\(m.hidden), latent \(m.latent), \(m.activation), \(step.model.parameters.count) parameters
                      steps        \(steps) timed (+\(warmup) warm-up), \(String(format: "%.3f", seconds)) s, \(String(format: "%.2f", seconds / Double(steps) * 1e3)) ms/step
                      throughput   \(String(format: "%.0f", samplesPerSecond)) samples/s
                      FLOPs        \(String(format: "%.2f", flopsPerSample / 1e6)) MFLOP/sample (matmuls of forward + backward)
                      achieved     \(String(format: "%.1f", achieved)) GFLOP/s per rank
                      sgemm        \(String(format: "%.1f", sgemm)) GFLOP/s per rank on the same shapes\(peak.map { String(format: ", %.2f of the nominal peak (%.1f GFLOP/s for %d thread(s))", sgemm / $0, $0, BLAS.threads) } ?? "")
                      ratio        \(String(format: "%.3f", ratio))  (achieved / sgemm)
                      blas         \(BLAS.library.summary) (\(BLAS.library.path))
                      cpu          \(CPUInfo.current.description), \(CPUInfo.current.vectorExtensions); \(CPUInfo.current.peakText)
                      step split   \(step.phases.all.map { "\($0.0) \(String(format: "%.2f", $0.1 / Double(steps) * 1e3))" }.joined(separator: ", ")) ms (rank 0)
                      grad reduce  \(reductionText), \(String(format: "%.2f MiB", Double(4 * step.model.parameters.count) / 1_048_576))/step: \(String(format: "%.2f", gradient[0])) ms exposed, \(String(format: "%.2f", gradient[1])) ms in flight (mean over ranks)
                      comm         \(String(format: "%.2f", gradient[2])) ms/step exposed (blocking calls, starts, polls, waits), \(String(format: "%.2f", gradient[2] - gradient[0] + gradient[1])) ms total incl. overlapped (mean over ranks)
                      optimizer    \(String(format: "%.2f MiB", Double(step.optimizerStateBytes) / 1_048_576)) Adam state per rank for the replicated parameters\(config.train.zeroStage == 1 ? " (ZeRO stage 1: sharded)" : "")
                      peak memory  \(Bench.peakText(peaks))
                    """)
                    if let sm = step.model.classifier?.output {
                        func mib(_ b: Int) -> String { String(format: "%.2f MiB", Double(b) / 1_048_576) }
                        print("""
                          classifier   V = \(sm.labels) labels, h = \(sm.width), \(config.objective.softmax.rawValue) softmax; \(sm.ownedRows) rows (labels or tree nodes) on rank 0
                          layer comm   \(mib(sm.bytesSentLastStep)) sent per step by rank 0 (allgather H, 4 B-vectors, reduce-scatter dH)
                                       vs \(mib(4 * sm.labels * (sm.width + 1))) a replicated V × h layer would allreduce
                          layer memory \(mib(sm.memoryBytes)) on rank 0 (W_r, b_r, gradients, Adam moments, per-step buffers)
                        """)
                    }
                }
            }
        }
    }


    /// The BLAS alone on the step's products (`Benchmark.blasSuite`): best of `--steps` replays of
    /// each group after `--warmup`, at each thread count. One process per library: scripts/blas_table.py
    /// runs it under each VAEAS_BLAS, interleaved.
    func gemmSuite() throws {
        let config = try options.resolve()
        let m = config.model
        let shape = VAEShape(input: 784, latent: m.latent, hidden: m.hidden, encoderLayers: m.encLayers,
                             decoderLayers: m.decLayers, activation: m.activation)
        let groups = Benchmark.blasSuite(shape: shape, batches: [128, 64], labels: [1000, 50000], width: m.hidden, rows: 128)
        let counts = threads.split(separator: ",").map { Int($0)! }
        let cpu = CPUInfo.current
        if !json {
            print("vaeas-dist bench --gemm: \(BLAS.library.vendor.rawValue) \(BLAS.library.version), kernel \(BLAS.library.kernel) (\(BLAS.library.path))")
            print("cpu: \(cpu.description), \(cpu.vectorExtensions); nominal peak \(cpu.peakText)")
            print("model: 784-\(m.hidden)×\(m.encLayers)-\(m.latent) encoder, \(m.decLayers)×\(m.hidden) decoder; output layer \(m.hidden) × V on 128 rows; best of \(steps) replays")
            print("| products | threads | MFLOP | ms | GFLOP/s | fraction of peak |")
            print("|---|---:|---:|---:|---:|---:|")
        }
        for t in counts {
            BLAS.threads = t
            for g in groups {
                _ = Benchmark.sgemmSeconds(g.shapes, repeats: warmup)
                let seconds = Benchmark.sgemmSeconds(g.shapes, repeats: steps)
                let gflops = g.flops / seconds / 1e9
                let peak = cpu.peakGFLOPSPerCore.map { $0 * Double(t) }
                if json {
                    var r = JSONRecord()
                    r.set("products", g.name); r.set("threads", t); r.set("calls", g.shapes.count)
                    r.set("flops", g.flops); r.set("seconds", seconds); r.set("gflops", gflops)
                    if let peak { r.set("fraction_of_peak", gflops / peak) }
                    r.setPlatform()
                    print(r.json)
                } else {
                    print(String(format: "| %@ | %d | %.1f | %.3f | %.1f | %@ |", g.name, t, g.flops / 1e6, seconds * 1e3, gflops,
                                 peak.map { String(format: "%.2f", gflops / $0) } ?? "?"))
                }
            }
        }
    }

    /// "412.3 MiB max over ranks, 820.1 MiB all ranks (per rank 412.3, 407.8; VmHWM)".
    static func peakText(_ peaks: [Int]) -> String {
        func mib(_ b: Int) -> String { b < 0 ? "?" : String(format: "%.1f", Double(b) / 1_048_576) }
        return "\(mib(peaks.max() ?? -1)) MiB max over ranks, \(mib(peaks.reduce(0) { $0 + max($1, 0) })) MiB all ranks "
            + "(per rank \(peaks.map(mib).joined(separator: ", ")); peak resident set, VmHWM)"
    }

    /// The collectives over message sizes (CollectiveBenchmark): one table row
    /// or JSON line per operation and size.
    func collectiveSweep() throws {
        try Runtime.withCommunicator { comm in
            let sizes = bytes.flatMap(Bench.parseBytes) ?? CollectiveBenchmark.defaultSizes
            let results = CollectiveBenchmark.run(comm: comm, operations: CollectiveBenchmark.Operation.allCases, sizes: sizes,
                                                   iterations: iterations)
            if comm.isRoot && json {
                for r in results {
                    var j = JSONRecord()
                    j.set("collective", r.operation.rawValue); j.set("ranks", comm.size); j.set("bytes", r.bytes)
                    j.set("iterations", r.iterations); j.set("median_us", r.median * 1e6); j.set("min_us", r.minimum * 1e6)
                    j.set("busbw_gb_per_s", r.busBandwidth(ranks: comm.size) / 1e9)
                    j.set("wrong", r.wrong)
                    print(j.json)
                }
            } else if comm.isRoot {
                print("vaeas-dist bench --collectives: \(comm.size) rank(s); time per call = the slowest rank's, after a barrier; median (min) over iterations")
                print("busbw = bytes / time × 2(P−1)/P for allreduce, × (P−1)/P for allgather and reduce-scatter (nccl-tests' convention)")
                print("#wrong: elements wrong in a checked call after the timed ones (rank r sends r + 1), over all ranks")
                print("| collective | bytes | iterations | median µs | min µs | busbw GB/s | #wrong |")
                print("|---|---:|---:|---:|---:|---:|---:|")
                for r in results {
                    print(String(format: "| %@ | %d | %d | %.1f | %.1f | %.2f | %d |", r.operation.rawValue, r.bytes, r.iterations,
                                 r.median * 1e6, r.minimum * 1e6, r.busBandwidth(ranks: comm.size) / 1e9, r.wrong))
                }
            }
            // Every rank holds the same count (summed over ranks), so every rank stops together.
            let wrong = results.reduce(0) { $0 + $1.wrong }
            if wrong > 0 {
                throw ValidationError("bench --collectives: \(wrong) element(s) came out wrong: the MPI library's collectives are broken on this set-up")
            }
        }
    }

    /// Full against hierarchical softmax over label counts: the classifier's
    /// time per step (its compute and its collectives) and its memory per rank,
    /// every row measured in this one run.
    func sweep() throws {
        try Runtime.withCommunicator { comm in
            let counts = labels!.split(separator: ",").map { Int($0)! }
            let kinds = softmaxKinds
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
                    try perm.withUnsafeBufferPointer { p in
                        for s in 0..<(warmup + steps) {
                            if s == warmup { comm.barrier(); step.phases = PhaseTimes() }
                            let k = s % perEpoch
                            try step(UnsafeBufferPointer(rebasing: p[(k * b)..<((k + 1) * b)]), epoch: 1)
                        }
                    }
                    let ph = step.phases
                    let stepMs = ph.all.reduce(0) { $0 + $1.1 } / Double(steps) * 1e3
                    let classifierMs = comm.max([(ph.classifier + ph.classifierCommunication + ph.classifierOptimizer)
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
            print("vaeas-dist bench --labels: \(comm.size) rank(s), \(BLAS.threads) BLAS thread(s)/rank, batch \(try options.resolve().train.batch), \(steps) timed steps each")
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
