import Foundation

/// What the process's launcher says about it through the environment, read in
/// one place: whether an MPI launcher started it, its rank before MPI is
/// initialised, whether Open MPI's `mpirun` relays its output, and how many
/// ranks share its node. mpirun/mpiexec set `OMPI_COMM_WORLD_*`; PMI and PMIx
/// launchers (`srun --mpi=pmix`, MPICH's hydra) set `PMIX_RANK`, `PMI_RANK`,
/// `PMI_SIZE`; SLURM's srun sets `SLURM_PROCID` and the per-node task counts.
public struct LauncherEnvironment: Sendable {
    public let variables: [String: String]

    public init(_ variables: [String: String] = ProcessInfo.processInfo.environment) {
        self.variables = variables
    }

    /// An MPI launcher started this process. `VAEAS_MPI=1` makes a plain run
    /// count as launched (an MPI singleton), e.g. to check an MPI installation.
    public var isLaunched: Bool {
        if variables["VAEAS_MPI"] == "1" { return true }
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "SLURM_PROCID"].contains { variables[$0] != nil }
    }

    /// The rank the launcher gave this process, before the communicator knows it (0 without a launcher).
    public var rank: Int {
        ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"].lazy
            .compactMap { self.variables[$0].flatMap { Int($0) } }.first ?? 0
    }

    /// Open MPI's mpirun started this process: its stdout is mpirun's relay, not the user's terminal.
    public var isOpenMPIRun: Bool { variables["OMPI_COMM_WORLD_SIZE"] != nil }

    /// Ranks on this node and the variable that said so: `OMPI_COMM_WORLD_LOCAL_SIZE`
    /// (mpirun), `SLURM_NTASKS_PER_NODE` (`--ntasks-per-node`), else this node's
    /// entry of `SLURM_STEP_TASKS_PER_NODE` or `SLURM_TASKS_PER_NODE` (forms such
    /// as `2(x3),1`; the entry of `SLURM_NODEID`, else the largest), else 1.
    public var localRanks: (count: Int, source: String) {
        if let n = BLASThreadPlan.positive(variables["OMPI_COMM_WORLD_LOCAL_SIZE"]) { return (n, "OMPI_COMM_WORLD_LOCAL_SIZE") }
        if let n = BLASThreadPlan.positive(variables["SLURM_NTASKS_PER_NODE"]) { return (n, "SLURM_NTASKS_PER_NODE") }
        let node = variables["SLURM_NODEID"].flatMap { Int($0) }
        for key in ["SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"] {
            if let list = variables[key].flatMap(Self.tasksPerNode), !list.isEmpty {
                if let node, node >= 0, node < list.count { return (max(1, list[node]), key) }
                return (max(1, list.max()!), key)
            }
        }
        return (1, "no launcher variables: 1")
    }

    /// SLURM's compressed per-node counts: "2(x3),1" → [2, 2, 2, 1]; nil if malformed.
    public static func tasksPerNode(_ text: String) -> [Int]? {
        var out: [Int] = []
        for part in text.split(separator: ",") {
            let p = part.trimmingCharacters(in: .whitespaces)
            if let open = p.firstIndex(of: "(") {
                guard p.hasSuffix(")"), let n = Int(p[..<open]),
                      p[p.index(after: open)...].hasPrefix("x"),
                      let times = Int(p[p.index(open, offsetBy: 2)..<p.index(before: p.endIndex)]),
                      n >= 0, times >= 1, times <= 1_000_000 else { return nil }
                out += Array(repeating: n, count: times)
            } else {
                guard let n = Int(p), n >= 0 else { return nil }
                out.append(n)
            }
        }
        return out.isEmpty ? nil : out
    }
}
