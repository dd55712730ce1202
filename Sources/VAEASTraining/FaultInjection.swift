import Foundation

/// Faults the tests inject through the environment, read once: the cases the
/// code must survive but a test cannot cause from outside the process.
/// `VAEAS_TEST_STALL=STEP[@RANK]` makes rank RANK (default every rank) hang
/// before optimizer step STEP, as a frozen node would, with its other threads
/// alive (a `kill -STOP` stops those too; the tests use that for a peer).
enum FaultInjection {
    static let stall: (step: Int, rank: Int?)? = {
        guard let text = ProcessInfo.processInfo.environment["VAEAS_TEST_STALL"], !text.isEmpty else { return nil }
        let parts = text.split(separator: "@").map(String.init)
        guard let step = Int(parts[0]) else { return nil }
        return (step, parts.count > 1 ? Int(parts[1]) : nil)
    }()

    static func stallIfAsked(step: Int, rank: Int) {
        guard let s = stall, s.step == step, s.rank == nil || s.rank == rank else { return }
        while true { sleep(3600) }
    }
}
