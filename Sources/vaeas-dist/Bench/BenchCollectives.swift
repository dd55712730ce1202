import ArgumentParser
import Foundation
import VAEAS
import VAEASConfig

/// `bench collectives`: the trainer's collectives over message sizes.
struct BenchCollectives: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collectives",
        abstract: "Time the collectives the trainer issues (allreduce, allgather, reduce-scatter) over message sizes.",
        discussion: """
        As nccl-tests and the OSU benchmarks do; every result is checked (#wrong). The input of the α–β model in `scripts/scaling.py project`.

        Example:
          mpirun -n 2 vaeas-dist bench collectives --bytes 4 1K 64K 4M 64M
        """)

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp(
        "Message sizes in bytes, K/M/G suffixes (binary) allowed; for allgather the gathered bytes, for reduce-scatter the input's. (default: 4 to 64M by factors of 4)",
        valueName: "n"))
    var bytes: [ByteCount] = []

    @Option(name: .long, help: ArgumentHelp("Timed calls per size (default: 200 for small messages down to 5 for 64 MiB).", valueName: "n"))
    var iterations: Int?

    @Flag(name: .long, help: "Print the result as JSON only (one object per row).")
    var json = false

    func validate() throws {
        if let iterations, iterations < 1 { throw ValidationError("--iterations must be at least 1, got \(iterations)") }
    }

    func run() throws { try collectiveSweep() }

    /// The collectives over message sizes (CollectiveBenchmark): one table row
    /// or JSON line per operation and size.
    func collectiveSweep() throws {
        try Runtime.withCommunicator { comm in
            let sizes = bytes.isEmpty ? CollectiveBenchmark.defaultSizes : bytes.map(\.bytes)
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
                print("vaeas-dist bench collectives: \(comm.size) rank(s); time per call = the slowest rank's, after a barrier; median (min) over iterations")
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
                throw ValidationError("bench collectives: \(wrong) element(s) came out wrong: the MPI library's collectives are broken on this set-up")
            }
        }
    }

}
