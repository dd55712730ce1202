import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig

/// `bench` / `bench step`: training steps against the BLAS's sgemm on the same shapes.
struct BenchStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time training steps and compare with the BLAS's sgemm on the same shapes, in one run (the default).",
        discussion: """
        Prints samples/s, the model's matmul FLOPs per sample, the achieved GFLOP/s per rank, and sgemm's GFLOP/s on exactly the products of one step (same shapes, same threads, same process), with ratio = achieved / sgemm, the share of sgemm's speed the whole step keeps. Because that ratio hides a slow BLAS, sgemm is also given as a fraction of the cores' nominal peak (vector width × FMA units × clock, from /proc/cpuinfo), with the BLAS library, its version and kernel, and the CPU. Also each rank's peak memory (peak resident set, VmHWM: JSON peak_rss_bytes_*).

        Examples:
          mpirun -n 2 vaeas-dist bench --config configs/mnist-vae.yaml --data-dir ../shared/data
          mpirun -n 2 vaeas-dist bench step --config configs/mnist-vaeas.yaml --data-dir ../shared/data --json --timeline step.json
        """)

    @OptionGroup var options: ConfigOptions
    @OptionGroup var repeats: BenchRepeats
    @OptionGroup var timelineOptions: TimelineOptions

    var steps: Int { repeats.steps }
    var warmup: Int { repeats.warmup }
    var json: Bool { repeats.json }

    func run() throws {
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
            let before = Trace.totals
            let t0 = DispatchTime.now().uptimeNanoseconds
            try runSteps(steps, from: warmup)
            comm.barrier()
            let seconds = comm.max([Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9])[0]
            let phases = Trace.totals - before
            try step.timeline?.finish()
            // Exposed gradient-reduction time, averaged over ranks (every rank waits its own).
            let gradient = comm.sum([phases[.gradientCommunication], phases.inFlight[Trace.Phase.gradientCommunication.rawValue],
                                     phases.communication])
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
                for (name, t) in phases.stepSplit { r.set("ms_\(name)", t / Double(steps) * 1e3) }
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
                      step split   \(phases.stepSplit.map { "\($0.0) \(String(format: "%.2f", $0.1 / Double(steps) * 1e3))" }.joined(separator: ", ")) ms (rank 0)
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


}

extension Trace.Totals {
    /// The step's split as `bench` reports it (seconds; the three communication phases as one).
    var stepSplit: [(String, Double)] {
        [("data", self[.data]), ("forward", self[.forward]), ("backward", self[.backward]), ("classifier", self[.classifier]),
         ("communication", communication), ("optimizer", self[.optimizer]), ("classifier_optimizer", self[.classifierOptimizer])]
    }
}
