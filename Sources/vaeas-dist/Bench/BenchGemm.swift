import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig

/// `bench gemm`: the BLAS alone on the step's products.
struct BenchGemm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Time the BLAS library alone on the step's products, at each thread count.",
        discussion: """
        The model's forward and backward products at batch 128 and 64, and the classifier's output layer at V = 1000 and 50000, as GFLOP/s and as a fraction of the core's nominal peak; best of --steps replays after --warmup. The input of scripts/blas_table.py, which compares libraries (VAEAS_BLAS).

        Example:
          VAEAS_BLAS=openblas vaeas-dist bench gemm --config configs/mnist-vaeas.yaml --threads 1 2
        """)

    @OptionGroup var options: ConfigOptions
    @OptionGroup var repeats: BenchRepeats

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp("BLAS thread counts to time.", valueName: "n"))
    var threads: [Int] = [1, 2]

    var steps: Int { repeats.steps }
    var warmup: Int { repeats.warmup }
    var json: Bool { repeats.json }

    func validate() throws {
        if let bad = threads.first(where: { $0 < 1 }) { throw ValidationError("--threads: \(bad) is not a thread count ≥ 1") }
    }

    func run() throws { try gemmSuite() }

    /// The BLAS alone on the step's products (`Benchmark.blasSuite`): best of `--steps` replays of
    /// each group after `--warmup`, at each thread count. One process per library: scripts/blas_table.py
    /// runs it under each VAEAS_BLAS, interleaved.
    func gemmSuite() throws {
        let config = try options.resolve()
        let m = config.model
        let shape = VAEShape(input: 784, latent: m.latent, hidden: m.hidden, encoderLayers: m.encLayers,
                             decoderLayers: m.decLayers, activation: m.activation)
        let groups = Benchmark.blasSuite(shape: shape, batches: [128, 64], labels: [1000, 50000], width: m.hidden, rows: 128)
        let counts = threads
        let cpu = CPUInfo.current
        if !json {
            print("vaeas-dist bench gemm: \(BLAS.library.vendor.rawValue) \(BLAS.library.version), kernel \(BLAS.library.kernel) (\(BLAS.library.path))")
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

}
