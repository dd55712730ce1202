import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig

/// `vaeas-dist bench`: one subcommand per thing timed (issue #22: they were
/// flags of one command). `bench` alone times training steps.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time training steps (the default), the label softmaxes, the BLAS alone, or the collectives.",
        discussion: """
        Examples:
          mpirun -n 2 vaeas-dist bench --config configs/mnist-vae.yaml --data-dir ../shared/data
          vaeas-dist bench labels 1000 50000 --softmax full tree --config configs/mnist-vaeas.yaml --data-dir ../shared/data
          mpirun -n 2 vaeas-dist bench collectives --bytes 4 1K 64K 4M 64M
          VAEAS_BLAS=openblas vaeas-dist bench gemm --config configs/mnist-vaeas.yaml --threads 1 2
        """,
        subcommands: [BenchStep.self, BenchLabels.self, BenchGemm.self, BenchCollectives.self],
        defaultSubcommand: BenchStep.self)

    /// "412.3 MiB max over ranks, 820.1 MiB all ranks (per rank 412.3, 407.8; VmHWM)".
    static func peakText(_ peaks: [Int]) -> String {
        func mib(_ b: Int) -> String { b < 0 ? "?" : String(format: "%.1f", Double(b) / 1_048_576) }
        return "\(mib(peaks.max() ?? -1)) MiB max over ranks, \(mib(peaks.reduce(0) { $0 + max($1, 0) })) MiB all ranks "
            + "(per rank \(peaks.map(mib).joined(separator: ", ")); peak resident set, VmHWM)"
    }
}

/// The options every timed mode shares.
struct BenchRepeats: ParsableArguments {
    @Option(name: .long, help: "Timed repetitions (training steps, or replays of the products).")
    var steps = 50

    @Option(name: .long, help: "Untimed warm-up repetitions.")
    var warmup = 5

    @Flag(name: .long, help: "Print the result as JSON only (one object per row).")
    var json = false

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1, got \(steps)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be at least 0, got \(warmup)") }
    }
}

/// A message size: bytes, with a binary K, M or G suffix ("64K" = 65536).
struct ByteCount: ExpressibleByArgument, Equatable {
    let bytes: Int
    init?(argument: String) {
        var digits = argument.trimmingCharacters(in: .whitespaces).uppercased()
        var unit = 1
        if let last = digits.last, let shift = ["K": 10, "M": 20, "G": 30][String(last)] {
            unit = 1 << shift
            digits.removeLast()
        }
        guard let n = Int(digits), n * unit >= 4 else { return nil }
        bytes = n * unit
    }
    static var defaultCompletionKind: CompletionKind { .default }
}
