import Foundation

/// Faults the tests inject through the environment, read once: the cases the
/// code must survive but a test cannot cause from outside the process.
/// `VAEAS_TEST_STALL=STEP[@RANK]` makes rank RANK (default every rank) hang
/// before optimizer step STEP, as a frozen node would, with its other threads
/// alive (a `kill -STOP` stops those too; the tests use that for a peer).
/// `VAEAS_TEST_FAIL=STEP[@RANK]` makes it throw an error only it knows of
/// before that step (a local disk or library failure mid-run).
enum FaultInjection {
    static let stall = parse("VAEAS_TEST_STALL")
    static let failure = parse("VAEAS_TEST_FAIL")

    static func parse(_ variable: String) -> (step: Int, rank: Int?)? {
        guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else { return nil }
        let parts = text.split(separator: "@").map(String.init)
        guard let step = Int(parts[0]) else { return nil }
        return (step, parts.count > 1 ? Int(parts[1]) : nil)
    }

    struct InjectedFailure: Error, CustomStringConvertible {
        let step: Int
        var description: String { "injected failure before step \(step) (VAEAS_TEST_FAIL)" }
    }

    static func failIfAsked(step: Int, rank: Int) throws {
        guard let f = failure, f.step == step, f.rank == nil || f.rank == rank else { return }
        throw InjectedFailure(step: step)
    }

    static func stallIfAsked(step: Int, rank: Int) {
        guard let s = stall, s.step == step, s.rank == nil || s.rank == rank else { return }
        while true { sleep(3600) }
    }
}
