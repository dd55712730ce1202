import XCTest
import VAEASCore

/// The launcher's environment variables, read in one place (mpirun, srun, PMIx, none).
final class LauncherEnvironmentTests: XCTestCase {
    func testLaunchedByEachLauncherAndNotWithout() {
        XCTAssertFalse(LauncherEnvironment([:]).isLaunched)
        XCTAssertFalse(LauncherEnvironment(["SLURM_JOB_ID": "7", "VAEAS_MPI": "0"]).isLaunched, "an sbatch shell is not a launch")
        for key in ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "SLURM_PROCID"] {
            XCTAssertTrue(LauncherEnvironment([key: "0"]).isLaunched, key)
        }
        XCTAssertTrue(LauncherEnvironment(["VAEAS_MPI": "1"]).isLaunched)
    }

    func testRankBeforeMPIIsInitialised() {
        XCTAssertEqual(LauncherEnvironment([:]).rank, 0)
        XCTAssertEqual(LauncherEnvironment(["OMPI_COMM_WORLD_RANK": "3", "SLURM_PROCID": "9"]).rank, 3, "mpirun's first")
        XCTAssertEqual(LauncherEnvironment(["PMIX_RANK": "2"]).rank, 2)
        XCTAssertEqual(LauncherEnvironment(["SLURM_PROCID": "5"]).rank, 5)
        XCTAssertEqual(LauncherEnvironment(["PMIX_RANK": "x", "SLURM_PROCID": "4"]).rank, 4, "an unreadable value is skipped")
    }

    func testOpenMPIRunAndLocalRanks() {
        XCTAssertTrue(LauncherEnvironment(["OMPI_COMM_WORLD_SIZE": "2"]).isOpenMPIRun)
        XCTAssertFalse(LauncherEnvironment(["SLURM_PROCID": "0"]).isOpenMPIRun)
        XCTAssertEqual(LauncherEnvironment(["SLURM_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "3"]).localRanks.count, 1)
        XCTAssertEqual(LauncherEnvironment(["SLURM_TASKS_PER_NODE": "2(x3),1"]).localRanks.count, 2, "no node id: the largest")
        XCTAssertEqual(LauncherEnvironment([:]).localRanks.count, 1)
    }
}
