import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How many BLAS threads one rank should use, decided from what the launcher
/// and the kernel say about this process: a pure function of (environment,
/// the CPU affinity count, the machine's cores), so every case is unit-testable.
public enum BLASThreadPlan {
    /// The decision and the reason, for `bench` and the logs.
    public struct Decision: Equatable, Sendable {
        /// Threads to set; nil: leave the library's own default.
        public let threads: Int?
        /// Where the number came from, e.g. "CPU affinity: 1 of 2 cores".
        public let reason: String
        public init(threads: Int?, reason: String) { self.threads = threads; self.reason = reason }
    }

    /// In order:
    /// 1. `OPENBLAS_NUM_THREADS` set: that number, whichever library runs (OpenBLAS
    ///    reads it itself; MKL and BLIS are told it, so one variable works for all);
    /// 2. the affinity mask narrower than the machine (taskset, `srun --cpu-bind`,
    ///    `mpirun --bind-to core`, cgroup cpusets): its CPU count;
    /// 3. `SLURM_CPUS_PER_TASK`;
    /// 4. cores / ranks on this node, ranks on this node from
    ///    `OMPI_COMM_WORLD_LOCAL_SIZE` (mpirun), `SLURM_NTASKS_PER_NODE`
    ///    (`--ntasks-per-node`), else this node's entry of
    ///    `SLURM_STEP_TASKS_PER_NODE` or `SLURM_TASKS_PER_NODE` (forms such as
    ///    `2(x3),1`; the entry of `SLURM_NODEID`, else the largest), else 1.
    /// Never below 1, never above `cores`.
    public static func decide(environment env: [String: String], affinityCount: Int?, cores: Int) -> Decision {
        let cores = max(1, cores)
        if let explicit = env["OPENBLAS_NUM_THREADS"], !explicit.isEmpty {
            return Decision(threads: positive(explicit), reason: "OPENBLAS_NUM_THREADS=\(explicit)")
        }
        if let a = affinityCount, a >= 1, a < cores {
            return Decision(threads: a, reason: "CPU affinity: \(a) of \(cores) cores")
        }
        if let c = positive(env["SLURM_CPUS_PER_TASK"]) {
            return Decision(threads: min(c, cores), reason: "SLURM_CPUS_PER_TASK=\(c)")
        }
        let (local, source) = LauncherEnvironment(env).localRanks
        let threads = max(1, cores / local)
        return Decision(threads: threads, reason: "\(cores) cores / \(local) rank(s) on this node (\(source))")
    }

    /// A positive integer (surrounding blanks allowed), or nil.
    static func positive(_ s: String?) -> Int? {
        guard let s, let n = Int(s.trimmingCharacters(in: .whitespaces)), n >= 1 else { return nil }
        return n
    }

    /// CPUs in this process's affinity mask (sched_getaffinity), nil if unknown.
    /// Glibc's Swift module does not export sched_getaffinity (it needs
    /// _GNU_SOURCE), so it is looked up by name.
    public static func affinityCount() -> Int? {
        #if os(Linux)
        typealias GetAffinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "sched_getaffinity") else { return nil }
        let getAffinity = unsafeBitCast(symbol, to: GetAffinity.self)
        var mask = [UInt64](repeating: 0, count: 64)   // 4096 CPUs
        let status = mask.withUnsafeMutableBytes { getAffinity(0, $0.count, $0.baseAddress!) }
        guard status == 0 else { return nil }
        let n = mask.reduce(0) { $0 + $1.nonzeroBitCount }
        return n > 0 ? n : nil
        #else
        return nil
        #endif
    }
}
