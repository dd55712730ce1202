import Foundation
import XCTest
import VAEASData

/// Loads the real datasets from the project's shared data directory:
/// `<repo>/../shared/data`, or `$VAEAS_SHARED_DATA`. These must be present;
/// a missing directory fails the tests rather than skipping them.
final class SharedDataTests: XCTestCase {
    static var sharedData: String {
        if let env = ProcessInfo.processInfo.environment["VAEAS_SHARED_DATA"], !env.isEmpty { return env }
        // <repo>/Tests/DataTests/SharedDataTests.swift -> <repo>
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/data").path
    }

    var data: String { Self.sharedData }

    override func setUpWithError() throws {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: data, isDirectory: &isDir)
        XCTAssertTrue(exists && isDir.boolValue,
                      "shared data directory \(data) is missing; set VAEAS_SHARED_DATA to the data directory")
    }

    private func assertBinary(_ set: Dataset, file: StaticString = #filePath, line: UInt = #line) {
        var counts = [Int](repeating: 0, count: 256)
        set.images.pixels.withUnsafeBufferPointer { for p in $0 { counts[Int(p)] += 1 } }
        let other = counts.enumerated().filter { $0.offset != 0 && $0.offset != 255 }.reduce(0) { $0 + $1.element }
        XCTAssertEqual(other, 0, "pixels other than 0 and 255 in \(set.images.path)", file: file, line: line)
        XCTAssertGreaterThan(counts[255], 0, file: file, line: line)
        XCTAssertGreaterThan(counts[0], counts[255], "MNIST digits are mostly background", file: file, line: line)
    }

    func testBinarizedMNISTAllSplitsFromParentDirectory() throws {
        let expected = ["train": 50000, "valid": 10000, "test": 10000]
        for split in ["train", "valid", "test"] {
            let set = try DatasetCatalog.load(name: "binarized-mnist", split: split, directory: data)
            XCTAssertEqual(set.count, expected[split], split)
            XCTAssertEqual(set.images.rows, 28)
            XCTAssertEqual(set.images.cols, 28)
            XCTAssertEqual(set.dimension, 784)
            XCTAssertEqual(set.images.pixels.count, expected[split]! * 784)
            XCTAssertNil(set.labels)
            assertBinary(set)
        }
    }

    func testBinarizedMNISTFromDatasetDirectoryAndLoadTime() throws {
        let start = Date()
        let set = try DatasetCatalog.load(name: "binarized-mnist", split: "train",
                                          directory: "\(data)/binarized-mnist")
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(set.count, 50000)
        XCTAssertEqual(set.images.path, "\(data)/binarized-mnist/train-images-idx3-ubyte.gz")
        // Well under a second in release; the bound leaves room for debug builds
        // on a loaded 2-core machine while still catching per-byte append loops.
        XCTAssertLessThan(seconds, 3.0, "loading 50000x784 took \(seconds) s")
    }

    func testMNISTTestWithLabels() throws {
        for split in ["test", "t10k"] {
            let set = try DatasetCatalog.load(name: "mnist", split: split, directory: data)
            XCTAssertEqual(set.count, 10000)
            XCTAssertEqual(set.dimension, 784)
            let labels = try XCTUnwrap(set.labels)
            XCTAssertEqual(labels.count, 10000)
            XCTAssertEqual(Set(labels.labels), Set(0...9))
            // The published t10k file starts with labels 7, 2, 1, 0, 4.
            XCTAssertEqual(Array(labels.labels.prefix(5)), [7, 2, 1, 0, 4])
            // Grayscale, unlike the binarized set.
            XCTAssertGreaterThan(Set(set.images.pixels).count, 2)
        }
    }

    func testMNISTTrainIsMissingAndSaysWhere() {
        let raw = "\(data)/mnist/train-images-idx3-ubyte"
        assertDataError(try DatasetCatalog.load(name: "mnist", split: "train", directory: data),
                        path: raw, contains: ["tried \(raw) and \(raw).gz"])
    }

    func testOmniglotSmall() throws {
        for (split, count) in [("train", 3630), ("test", 1210)] {
            let set = try DatasetCatalog.load(name: "omniglot-small", split: split, directory: data)
            XCTAssertEqual(set.count, count, split)
            XCTAssertEqual(set.images.rows, 28)
            XCTAssertEqual(set.images.cols, 28)
            let labels = try XCTUnwrap(set.labels)
            XCTAssertEqual(labels.count, count)
            XCTAssertLessThan(Int(labels.labels.max() ?? 255), 242)
        }
    }
}
