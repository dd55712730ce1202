import Foundation
import XCTest
import VAEASConfig

/// Helpers of the config tests.
class ConfigTestCase: XCTestCase {
    // MARK: helpers

    /// Runs `body`, requires a ConfigError, and checks its description contains every fragment.
    func assertError(_ fragments: [String], key: String? = nil,
                             file: StaticString = #filePath, line: UInt = #line,
                             _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected a ConfigError containing \(fragments)", file: file, line: line)
        } catch let error as ConfigError {
            for f in fragments {
                XCTAssertTrue(error.description.contains(f),
                              "error «\(error.description)» does not contain «\(f)»", file: file, line: line)
            }
            if let key { XCTAssertEqual(error.key, key, file: file, line: line) }
        } catch {
            XCTFail("expected ConfigError, got \(error)", file: file, line: line)
        }
    }

    func parse(_ yaml: String) throws -> TrainConfig {
        try TrainConfig.parse(yaml: yaml, source: "test.yaml")
    }

    func setting(_ assignments: String...) throws -> TrainConfig {
        var c = TrainConfig.defaults
        for a in assignments { try c.set(a) }
        return c
    }

}
