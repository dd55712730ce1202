import XCTest
import VAEAS

/// BLAS threads per rank from (environment, affinity, cores).
final class BLASThreadPlanTests: XCTestCase {
    func threads(_ env: [String: String], affinity: Int? = nil, cores: Int) -> Int? {
        BLASThreadPlan.decide(environment: env, affinityCount: affinity, cores: cores).threads
    }

    func testExplicitOpenBLASThreadsWins() {
        let d = BLASThreadPlan.decide(environment: ["OPENBLAS_NUM_THREADS": "3", "SLURM_CPUS_PER_TASK": "8"],
                                      affinityCount: 1, cores: 16)
        XCTAssertEqual(d.threads, 3)
        XCTAssertTrue(d.reason.contains("OPENBLAS_NUM_THREADS=3"), d.reason)
    }

    func testANarrowerAffinityMaskWins() {
        // taskset -c 0, srun --cpu-bind=cores, mpirun --bind-to core.
        XCTAssertEqual(threads([:], affinity: 1, cores: 2), 1)
        XCTAssertEqual(threads(["SLURM_CPUS_PER_TASK": "8", "OMPI_COMM_WORLD_LOCAL_SIZE": "1"], affinity: 4, cores: 32), 4)
        // The whole machine is no information: fall through.
        XCTAssertEqual(threads(["OMPI_COMM_WORLD_LOCAL_SIZE": "2"], affinity: 8, cores: 8), 4)
    }

    func testSlurmCPUsPerTask() {
        XCTAssertEqual(threads(["SLURM_CPUS_PER_TASK": "8", "SLURM_STEP_TASKS_PER_NODE": "4"], affinity: 32, cores: 32), 8)
        XCTAssertEqual(threads(["SLURM_CPUS_PER_TASK": "64"], cores: 32), 32, "never above the cores")
    }

    /// `srun -n 2` on 2 cores without --ntasks-per-node or -c: 1 thread each, not 2.
    func testSrunWithoutTasksPerNodeCountsTheStepsTasks() {
        XCTAssertEqual(threads(["SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_TASKS_PER_NODE": "2", "SLURM_NODEID": "0"],
                               affinity: 2, cores: 2), 1)
        XCTAssertEqual(threads(["SLURM_TASKS_PER_NODE": "4(x2)"], affinity: 16, cores: 16), 4)
        // This node's entry: node 2 of "2(x2),1" runs one task.
        XCTAssertEqual(threads(["SLURM_STEP_TASKS_PER_NODE": "2(x2),1", "SLURM_NODEID": "2"], cores: 8), 8)
        XCTAssertEqual(threads(["SLURM_STEP_TASKS_PER_NODE": "2(x2),1", "SLURM_NODEID": "1"], cores: 8), 4)
        // No node id: the busiest node's count.
        XCTAssertEqual(threads(["SLURM_STEP_TASKS_PER_NODE": "1,3"], cores: 6), 2)
        // The step's count beats the job's.
        XCTAssertEqual(threads(["SLURM_STEP_TASKS_PER_NODE": "1", "SLURM_TASKS_PER_NODE": "4"], cores: 4), 4)
    }

    func testLocalRankVariablesInOrder() {
        XCTAssertEqual(threads(["OMPI_COMM_WORLD_LOCAL_SIZE": "3", "SLURM_NTASKS_PER_NODE": "1"], cores: 12), 4)
        XCTAssertEqual(threads(["SLURM_NTASKS_PER_NODE": "2", "SLURM_STEP_TASKS_PER_NODE": "8"], cores: 8), 4)
        XCTAssertEqual(threads([:], cores: 6), 6)
        XCTAssertEqual(threads(["OMPI_COMM_WORLD_LOCAL_SIZE": "8"], cores: 2), 1, "at least one thread")
        XCTAssertEqual(threads(["OMPI_COMM_WORLD_LOCAL_SIZE": "x", "SLURM_STEP_TASKS_PER_NODE": "2(x"], cores: 4), 4,
                       "malformed values are ignored")
    }

    func testTasksPerNodeParsing() {
        XCTAssertEqual(LauncherEnvironment.tasksPerNode("2(x3),1"), [2, 2, 2, 1])
        XCTAssertEqual(LauncherEnvironment.tasksPerNode("4"), [4])
        XCTAssertEqual(LauncherEnvironment.tasksPerNode("1,2(x2)"), [1, 2, 2])
        for bad in ["", "2(x", "(x2)", "a", "2(y3)", "2(x0)", "-1"] {
            XCTAssertNil(LauncherEnvironment.tasksPerNode(bad), bad)
        }
    }

    func testAffinityCountOfThisProcess() throws {
        let n = try XCTUnwrap(BLASThreadPlan.affinityCount())
        XCTAssertGreaterThanOrEqual(n, 1)
        XCTAssertLessThanOrEqual(n, ProcessInfo.processInfo.activeProcessorCount)
    }
}
