import VAEASDistributed
import Foundation

/// Latency and bandwidth of the collectives the trainer issues, over message
/// sizes, in the manner of nccl-tests (`all_reduce_perf`) and the OSU
/// micro-benchmarks: the input of the α–β communication model that
/// `scripts/scaling.py project` fits and uses to predict step times at
/// cluster scale (docs/SCALING.md).
///
/// Sizes follow nccl-tests: for allreduce the buffer's bytes; for allgather
/// the gathered result's bytes (each rank contributes bytes/P); for
/// reduce-scatter the input's bytes (each rank keeps bytes/P). Bus bandwidth
/// is nccl-tests' `busbw`: algbw × 2(P−1)/P (allreduce) or × (P−1)/P
/// (allgather, reduce-scatter), the rate on each link of a ring algorithm.
public enum CollectiveBenchmark {
    public enum Operation: String, CaseIterable, Sendable {
        case allreduce, allgather, reduceScatter = "reduce_scatter"

        /// busbw / algbw (nccl-tests' PERFORMANCE.md).
        public func busFactor(ranks p: Int) -> Double {
            let q = Double(p)
            switch self {
            case .allreduce: return 2 * (q - 1) / q
            case .allgather, .reduceScatter: return (q - 1) / q
            }
        }
    }

    public struct Result: Sendable {
        public let operation: Operation
        public let bytes: Int
        public let iterations: Int
        /// Seconds per call: median and minimum over iterations of the slowest rank's time.
        public let median: Double
        public let minimum: Double
        /// Elements that came out wrong in a checked call after the timed ones (nccl-tests' `#wrong`), summed over ranks.
        public let wrong: Int
        public func busBandwidth(ranks: Int) -> Double {
            median > 0 ? Double(bytes) / median * operation.busFactor(ranks: ranks) : 0
        }
    }

    /// Default sizes: 4 B to 64 MiB by factors of 4 (the classifier's B-vector
    /// allreduces are ~0.5–2 KiB, its allgather of H ~0.25–1 MiB, the VAE's
    /// gradient ~9 MiB, a replicated V × h layer's 20 MB–2 GB).
    public static let defaultSizes: [Int] = (0...12).map { 4 << (2 * $0) }

    /// Iterations for a message of `bytes`: enough that small messages are
    /// timed many times, ≥ 5 for the largest.
    public static func iterations(bytes: Int) -> Int { Swift.max(5, Swift.min(200, (64 << 20) / Swift.max(bytes, 1) * 5)) }

    /// Times each operation at each size (collective: every rank calls it with
    /// the same arguments). Each call starts after a barrier; its time is the
    /// slowest rank's, so a late rank counts as it does in a training step.
    public static func run(comm: Communicator, operations: [Operation], sizes: [Int], iterations fixed: Int? = nil,
                           warmup: Int = 2) -> [Result] {
        let p = comm.size
        var results: [Result] = []
        for op in operations {
            for bytes in sizes {
                // Whole floats, divisible by P for the gather/scatter ops (nccl-tests rounds the same way).
                let floats = Swift.max(p, (bytes / 4 / p) * p)
                let block = floats / p
                let counts = RankCounts(Array(repeating: block, count: p))
                var send = [Float](repeating: 1, count: floats)
                var receive = [Float](repeating: 0, count: floats)
                let n = fixed ?? iterations(bytes: bytes)
                var times = [Double](repeating: 0, count: n)
                func call() {
                    switch op {
                    case .allreduce:
                        send.withUnsafeMutableBufferPointer { comm.allreduceSum($0) }
                    case .allgather:
                        send.withUnsafeBufferPointer { s in
                            receive.withUnsafeMutableBufferPointer {
                                comm.allgatherv(send: UnsafeBufferPointer(rebasing: s[0..<block]), receive: $0, counts: counts)
                            }
                        }
                    case .reduceScatter:
                        send.withUnsafeBufferPointer { s in
                            receive.withUnsafeMutableBufferPointer {
                                comm.reduceScatterv(send: s, receive: UnsafeMutableBufferPointer(rebasing: $0[0..<block]), counts: counts)
                            }
                        }
                    }
                }
                for i in 0..<(warmup + n) {
                    comm.barrier()
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    call()
                    let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
                    if i >= warmup { times[i - warmup] = dt }
                    // Keep allreduce's values finite and bounded (a sum doubles them at P = 2).
                    if op == .allreduce && i % 16 == 15 { for k in send.indices { send[k] = 1 } }
                }
                // Checked call: rank r sends r + 1 in every element (distinct per block for the gather).
                for k in send.indices { send[k] = Float(comm.rank + 1) }
                for k in receive.indices { receive[k] = -1 }
                call()
                let total = Float(p * (p + 1) / 2)
                var wrong = 0
                switch op {
                case .allreduce: wrong = send.filter { $0 != total }.count
                case .allgather: wrong = (0..<floats).filter { receive[$0] != Float($0 / block + 1) }.count
                case .reduceScatter: wrong = receive[0..<block].filter { $0 != total }.count
                }
                let slowest = comm.max(times).sorted()
                results.append(Result(operation: op, bytes: floats * 4, iterations: n,
                                      median: slowest[n / 2], minimum: slowest[0],
                                      wrong: Int(comm.sum([Double(wrong)])[0])))
            }
        }
        return results
    }
}
