import Foundation
import XCTest
import VAEASData

/// A fresh directory under the system temp dir, removed by `tearDown`.
func makeTempDirectory(_ label: String = "vaeas-data") throws -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func bigEndian(_ v: UInt32) -> [UInt8] {
    [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
}

/// IDX bytes with an arbitrary magic and dims, so tests can also build bad files.
func idxBytes(magic: UInt32, dims: [UInt32], data: [UInt8]) -> [UInt8] {
    bigEndian(magic) + dims.flatMap(bigEndian) + data
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Deterministic pixel pattern so round trips catch ordering mistakes.
func pattern(count: Int, seed: Int = 7) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &+ $0 / 256) }
}

/// Compresses `path` to `path.gz` with the system gzip, so the tests do not
/// depend on the zlib code they are testing. Keeps the original.
func gzipFile(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let gzip = ["/bin/gzip", "/usr/bin/gzip"].first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let gzip else {
        XCTFail("gzip not found at /bin/gzip or /usr/bin/gzip; install the gzip package", file: file, line: line)
        throw CocoaError(.fileNoSuchFile)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: gzip)
    process.arguments = ["-k", "-f", "-n", path]
    try process.run()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, "gzip -k \(path) failed", file: file, line: line)
}

/// Runs `body`, requires it to throw a `DataError`, and checks that its
/// description names `path` and contains every phrase.
func assertDataError<T>(_ body: @autoclosure () throws -> T, path: String, contains phrases: [String],
                        file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected a DataError naming \(path)", file: file, line: line)
    } catch let error as DataError {
        let text = error.description
        XCTAssertTrue(text.contains(path), "error does not name \(path): \(text)", file: file, line: line)
        for phrase in phrases {
            XCTAssertTrue(text.contains(phrase), "error lacks \"\(phrase)\": \(text)", file: file, line: line)
        }
    } catch {
        XCTFail("expected a DataError, got \(type(of: error)): \(error)", file: file, line: line)
    }
}
