import Foundation
import XCTest
import VAEAS

/// `Trace`, the one timing track (issue #22): spans book exclusive time per
/// phase, a span without a phase books into the one around it, and a
/// collective's phase follows from where it is called — what `bench`'s step
/// split and the timeline both rest on. Durations are sleeps, so only lower
/// bounds and "not counted twice" are asserted, never a speed.
final class TraceTests: XCTestCase {
    /// Whole milliseconds of `phase` in `t`.
    func ms(_ t: Trace.Totals, _ phase: Trace.Phase) -> Double { t[phase] * 1e3 }

    func testNestedSpansBookExclusiveTime() {
        let before = Trace.totals
        Trace.span("forward", .forward) {
            usleep(20_000)
            Trace.span("layer") { usleep(10_000) }                     // no phase: the forward's
            Trace.span("classifier forward", .classifier) {
                usleep(30_000)
                Trace.collective("allgatherv", bytes: 400) { usleep(15_000) }
            }
        }
        let d = Trace.totals - before
        XCTAssertGreaterThanOrEqual(ms(d, .forward), 30)
        XCTAssertGreaterThanOrEqual(ms(d, .classifier), 30)
        XCTAssertGreaterThanOrEqual(ms(d, .classifierCommunication), 15)
        // Exclusive: the classifier's 45 ms are not also the forward's (which has 30 ms of its own).
        XCTAssertLessThan(ms(d, .forward), 30 + 14, "nested time booked twice: \(ms(d, .forward)) ms")
        XCTAssertLessThan(ms(d, .classifier), 30 + 14, "the collective booked as compute: \(ms(d, .classifier)) ms")
        XCTAssertEqual(d.bytes[Trace.Phase.classifierCommunication.rawValue], 400)
        XCTAssertEqual(d.communication, d[.classifierCommunication])
    }

    func testACollectivesPhaseFollowsItsContext() {
        let before = Trace.totals
        Trace.collective("barrier", bytes: 0) { usleep(5_000) }            // outside any span
        Trace.span("backward", .backward) {
            Trace.span("gradient buckets", .gradientCommunication) {
                Trace.span("gradient bucket") {                             // inherits gradient communication
                    Trace.collective("iallreduce start", bytes: 64, blocking: false) { usleep(5_000) }
                }
            }
            Trace.collective("allreduce_sum", bytes: 8) { usleep(5_000) }  // inside compute: plain communication
        }
        Trace.span("layer") { usleep(5_000) }                              // no phase anywhere
        let d = Trace.totals - before
        XCTAssertGreaterThanOrEqual(ms(d, .communication), 10)
        XCTAssertGreaterThanOrEqual(ms(d, .gradientCommunication), 5)
        XCTAssertGreaterThanOrEqual(ms(d, .other), 5)
        XCTAssertLessThan(ms(d, .backward), 5, "communication inside backward booked as backward")
        XCTAssertEqual(d.bytes[Trace.Phase.gradientCommunication.rawValue], 64)
        XCTAssertEqual(d.bytes[Trace.Phase.communication.rawValue], 8)
        // A nonblocking start is exposed time but not its flight (booked when it completes).
        XCTAssertEqual(d.inFlight[Trace.Phase.gradientCommunication.rawValue], 0)
        XCTAssertGreaterThanOrEqual(d.inFlight[Trace.Phase.communication.rawValue], 0.010)
        XCTAssertNil(Trace.current, "every span closed")
    }

    func testRecordedEventsNameCollectivesByTheirRole() {
        _ = Trace.drain()
        Trace.recording = true
        defer { Trace.recording = false; _ = Trace.drain() }
        Trace.span("classifier output layer forward", .classifier) {
            Trace.collective("allgatherv", bytes: 4) {}
        }
        Trace.span("gradient reduction", .gradientCommunication) {
            Trace.span("gradient allreduce") { Trace.collective("allreduce_sum", bytes: 4) {} }
        }
        Trace.span("optimizer", .optimizer, name: "optimizer (Adam, 7 parameters)") {}
        // A poll of a nonblocking request is exposed time but no event (how often ranks poll varies).
        Trace.span("gradient buckets", .gradientCommunication) { _ = Trace.collective("test", bytes: 0, blocking: false, event: false) { true } }
        let events = Trace.drain().map { ($0.name, $0.category) }
        XCTAssertEqual(events.map { $0.0 }, ["allgather H", "classifier output layer forward",
                                             "gradient allreduce: allreduce_sum", "gradient allreduce",
                                             "gradient reduction", "optimizer (Adam, 7 parameters)", "gradient buckets"])
        XCTAssertEqual(events.map { $0.1 }, ["communication", "classifier", "communication", "communication",
                                             "communication", "optimizer", "communication"])
    }
}
