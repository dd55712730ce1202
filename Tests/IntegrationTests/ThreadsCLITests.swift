import Foundation
import XCTest
import VAEAS

/// BLAS threads per rank as `bench` reports them, with OPENBLAS_NUM_THREADS unset.
final class ThreadsCLITests: XCTestCase {
    let cores = ProcessInfo.processInfo.activeProcessorCount

    func benchThreads(prefix: [String] = [], environment: [String: String?] = [:]) throws -> Int? {
        var env = environment
        env["OPENBLAS_NUM_THREADS"] = .some(nil)
        let r = try CLI.run(["bench", "--data-dir", CLI.sharedData, "--set", "data.name=binarized-mnist", "--set", "data.limit=500",
                             "--set", "model.hidden=32", "--set", "model.latent=4", "--steps", "1", "--warmup", "0", "--json"],
                            environment: env, prefix: prefix)
        XCTAssertEqual(r.status, 0, r.output)
        let j = try CLI.lastJSON(r)
        return j["blas_threads"] as? Int
    }

    /// A process pinned to one core (taskset, srun --cpu-bind, mpirun --bind-to core) runs one BLAS thread.
    func testTasksetToOneCoreGivesOneBLASThread() throws {
        try XCTSkipIf(cores < 2, "needs 2 cores to tell 1 thread from all")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") else {
            return XCTFail("/usr/bin/taskset (util-linux) is missing: the pinned case cannot be checked")
        }
        XCTAssertEqual(try benchThreads(prefix: ["taskset", "-c", "0"]), 1)
    }

    /// `srun -n 2` without --ntasks-per-node or -c sets only SLURM_STEP_TASKS_PER_NODE:
    /// each of the 2 ranks gets half the cores, not all of them.
    func testSrunStepTasksPerNodeSplitsTheCores() throws {
        try XCTSkipIf(cores < 2, "needs 2 cores")
        try XCTSkipIf((BLASThreadPlan.affinityCount() ?? cores) < cores, "this test process is pinned to fewer cores")
        XCTAssertEqual(try benchThreads(environment: ["SLURM_STEP_TASKS_PER_NODE": "2", "SLURM_TASKS_PER_NODE": "2",
                                                      "SLURM_NODEID": "0", "SLURM_NTASKS_PER_NODE": nil,
                                                      "SLURM_CPUS_PER_TASK": nil]),
                       max(1, cores / 2))
    }
}
