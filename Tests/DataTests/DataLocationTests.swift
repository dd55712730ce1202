import Foundation
import XCTest
import VAEASData

/// Looking a dataset up in several places, and subsets spread over a split.
final class DataLocationTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try makeTempDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// `count` 2×3 images with labels i % 10 in `folder`.
    func writeSplit(in folder: String, stem: String, count: Int) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try writeFile("\(folder)/\(stem)-images-idx3-ubyte",
                      idxBytes(magic: 0x803, dims: [UInt32(count), 2, 3], data: pattern(count: count * 6)))
        try writeFile("\(folder)/\(stem)-labels-idx1-ubyte",
                      idxBytes(magic: 0x801, dims: [UInt32(count)], data: (0..<count).map { UInt8($0 % 10) }))
    }

    func testStandardLocations() {
        XCTAssertEqual(DatasetCatalog.standardDirectory(of: "fashion-mnist"), "/usr/share/datasets/fashion-mnist")
        XCTAssertNil(DatasetCatalog.standardDirectory(of: "binarized-mnist"))
        XCTAssertNil(DatasetCatalog.standardDirectory(of: "cifar10"))
        XCTAssertEqual(DataLocation.standard(for: "fashion-mnist")?.origin, "standard location of fashion-mnist")
    }

    /// $VAEAS_DATA_DIR holding other datasets does not hide one found later.
    func testFirstLocationThatHoldsTheDatasetIsUsed() throws {
        let others = "\(dir)/shared", system = "\(dir)/system"
        try writeSplit(in: "\(others)/mnist", stem: "t10k", count: 3)
        try writeSplit(in: system, stem: "train", count: 5)   // flat: the dataset's own folder
        let places = [DataLocation(others, origin: "$VAEAS_DATA_DIR"), DataLocation(system, origin: "standard location")]
        XCTAssertFalse(DatasetCatalog.holds(name: "fashion-mnist", split: "train", directory: others))
        XCTAssertTrue(DatasetCatalog.holds(name: "fashion-mnist", split: "train", directory: system))
        let (data, location) = try DatasetCatalog.load(name: "fashion-mnist", split: "train", from: places)
        XCTAssertEqual(data.count, 5)
        XCTAssertEqual(location, places[1])
        // The first one wins when it holds the dataset.
        let (mnist, at) = try DatasetCatalog.load(name: "mnist", split: "test", from: places)
        XCTAssertEqual(mnist.count, 3)
        XCTAssertEqual(at, places[0])
    }

    /// A place that holds the dataset but whose file is bad is an error about
    /// that file, not a reason to look further.
    func testABrokenDatasetIsNotSkipped() throws {
        let first = "\(dir)/first", second = "\(dir)/second"
        try FileManager.default.createDirectory(atPath: "\(first)/mnist", withIntermediateDirectories: true)
        try writeFile("\(first)/mnist/t10k-images-idx3-ubyte", [0, 0, 8, 3, 0, 0])
        try writeSplit(in: "\(second)/mnist", stem: "t10k", count: 3)
        assertDataError(try DatasetCatalog.load(name: "mnist", split: "test", from: [DataLocation(first, origin: "a"),
                                                                                     DataLocation(second, origin: "b")]),
                        path: "\(first)/mnist/t10k-images-idx3-ubyte", contains: [])
    }

    func testNothingFoundListsEveryPlaceTried() throws {
        let empty = "\(dir)/empty", missing = "\(dir)/missing"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let places = [DataLocation(empty, origin: "data.dir in runs/x/config.yaml"),
                      DataLocation(missing, origin: "$VAEAS_DATA_DIR"),
                      DataLocation(empty, origin: "repeated, skipped"),
                      DataLocation("", origin: "empty, skipped")]
        assertDataError(try DatasetCatalog.load(name: "fashion-mnist", split: "test", from: places),
                        path: "fashion-mnist",
                        contains: ["dataset fashion-mnist split test not found",
                                   "\(empty) (data.dir in runs/x/config.yaml: no fashion-mnist/ subdirectory and no t10k-images-idx3-ubyte[.gz] in it)",
                                   "\(missing) ($VAEAS_DATA_DIR: does not exist)", "--data-dir"])
        do {
            _ = try DatasetCatalog.load(name: "fashion-mnist", split: "test", from: places)
        } catch {
            XCTAssertFalse("\(error)".contains("skipped"), "\(error)")
        }
        // One place: the single-directory error, naming the file.
        assertDataError(try DatasetCatalog.load(name: "mnist", split: "test", from: [DataLocation(empty, origin: "--data-dir")]),
                        path: "\(empty)/t10k-images-idx3-ubyte", contains: ["missing file"])
        assertDataError(try DatasetCatalog.load(name: "mnist", split: "test", from: []), path: "mnist",
                        contains: ["no directory"])
        // An unknown split is named as such, whatever the places.
        assertDataError(try DatasetCatalog.load(name: "mnist", split: "valid", from: places), path: "mnist",
                        contains: ["unknown split 'valid'"])
    }

    func testSpreadTakesEveryKthSample() throws {
        try writeSplit(in: dir, stem: "t10k", count: 100)
        let data = try DatasetCatalog.load(name: "mnist", split: "test", directory: dir)
        let (sub, indices, text) = data.spread(8)
        XCTAssertEqual(indices, [0, 12, 24, 36, 48, 60, 72, 84])
        XCTAssertEqual(text, "8 examples: every 12th of test (100)")
        XCTAssertEqual(sub.count, 8)
        XCTAssertEqual(sub.labels?.labels, [0, 2, 4, 6, 8, 0, 2, 4])
        XCTAssertEqual(Array(sub.images.pixels[6..<12]), Array(data.images.pixels[72..<78]))
        XCTAssertEqual(data.spread(30).description, "30 examples: every 3rd of test (100)")
        XCTAssertEqual(data.spread(60).description, "60 examples: the first 60 of test (100)")
        XCTAssertEqual(data.spread(60).indices, Array(0..<60))
        for all in [0, -1, 100, 101] {
            XCTAssertEqual(data.spread(all).dataset.count, 100)
            XCTAssertEqual(data.spread(all).description, "all 100 examples of test")
        }
        XCTAssertEqual([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111, 312].map(Dataset.ordinal),
                       ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th", "312th"])
    }
}
