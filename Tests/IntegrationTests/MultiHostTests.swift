import Foundation
import XCTest

/// `cluster/netns-test.sh`: 2- and 3-rank training across two network
/// namespaces over Open MPI's TCP transport, each model equal to the
/// single-host run's. Skipped, with the reason, where namespaces cannot be made.
final class MultiHostTests: XCTestCase {
    func testTwoHostRunOverTCPEqualsTheSingleHostRun() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root for ip netns (run the suite as root, or sudo cluster/netns-test.sh)") }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/bin/sh")
        let name = "vaeas-probe-\(getpid())"
        probe.arguments = ["-c", "ip netns add \(name) && ip netns delete \(name)"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        do { try probe.run(); probe.waitUntilExit() } catch { throw XCTSkip("cannot run ip: \(error)") }
        guard probe.terminationStatus == 0 else {
            throw XCTSkip("`ip netns add` fails here (no CAP_SYS_ADMIN, or no iproute2): the netns multi-host test cannot run")
        }
        let r = try CLI.run([CLI.repositoryRoot.appendingPathComponent("cluster/netns-test.sh").path], timeout: 400,
                            executable: "/bin/bash", environment: ["VAEAS_BIN": CLI.binary, "VAEAS_DATA_DIR": CLI.sharedData])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("netns-test: PASS"), r.output)
        XCTAssertEqual(r.stdout.components(separatedBy: "tensors bit-identical").count - 1, 4, r.output)
    }
}
