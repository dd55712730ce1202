import Foundation
import XCTest
import VAEASData

/// Catalog behaviour on small synthetic files.
final class DatasetCatalogTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try makeTempDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    private func writeSplit(in folder: String, stem: String, count: Int, labelCount: Int? = nil,
                            gzip: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let images = "\(folder)/\(stem)-images-idx3-ubyte"
        try writeFile(images, idxBytes(magic: 0x803, dims: [UInt32(count), 2, 3],
                                       data: pattern(count: count * 6)))
        var written = [images]
        if let labelCount {
            let labels = "\(folder)/\(stem)-labels-idx1-ubyte"
            try writeFile(labels, idxBytes(magic: 0x801, dims: [UInt32(labelCount)],
                                           data: (0..<labelCount).map { UInt8($0 % 10) }))
            written.append(labels)
        }
        if gzip {
            for path in written {
                try gzipFile(path)
                try FileManager.default.removeItem(atPath: path)
            }
        }
    }

    func testNamesAndSplits() {
        XCTAssertEqual(DatasetCatalog.names, ["binarized-mnist", "mnist", "fashion-mnist", "omniglot-small"])
        XCTAssertEqual(DatasetCatalog.splits(of: "binarized-mnist"), ["train", "valid", "test"])
        XCTAssertEqual(DatasetCatalog.splits(of: "mnist"), ["train", "test"])
        XCTAssertEqual(DatasetCatalog.splits(of: "fashion-mnist"), ["train", "test"])
        XCTAssertEqual(DatasetCatalog.splits(of: "omniglot-small"), ["train", "test"])
        XCTAssertNil(DatasetCatalog.splits(of: "cifar10"))
        for name in DatasetCatalog.names {
            XCTAssertEqual(DatasetCatalog.defaultTestSplit(of: name), "test")
        }
    }

    func testLoadsFromNestedAndFlatDirectoryRawAndGzip() throws {
        // Nested: <dir>/binarized-mnist/valid-images-idx3-ubyte.gz
        try writeSplit(in: "\(dir)/binarized-mnist", stem: "valid", count: 4, gzip: true)
        let nested = try DatasetCatalog.load(name: "binarized-mnist", split: "valid", directory: dir)
        XCTAssertEqual(nested.count, 4)
        XCTAssertEqual(nested.dimension, 6)
        XCTAssertNil(nested.labels)
        XCTAssertEqual(nested.images.path, "\(dir)/binarized-mnist/valid-images-idx3-ubyte.gz")
        // Flat: the dataset directory itself, raw files.
        let flat = "\(dir)/flat"
        try writeSplit(in: flat, stem: "valid", count: 5)
        let direct = try DatasetCatalog.load(name: "binarized-mnist", split: "valid", directory: flat)
        XCTAssertEqual(direct.count, 5)
        XCTAssertEqual(direct.images.path, "\(flat)/valid-images-idx3-ubyte")
        XCTAssertEqual(direct.name, "binarized-mnist")
        XCTAssertEqual(direct.split, "valid")
    }

    func testRawFileIsPreferredOverGzip() throws {
        try writeSplit(in: dir, stem: "train", count: 3, labelCount: 3)
        try gzipFile("\(dir)/train-images-idx3-ubyte")
        let data = try DatasetCatalog.load(name: "omniglot-small", split: "train", directory: dir)
        XCTAssertEqual(data.images.path, "\(dir)/train-images-idx3-ubyte")
    }

    func testMNISTTestSplitUsesT10kFilesAndAlias() throws {
        try writeSplit(in: "\(dir)/fashion-mnist", stem: "t10k", count: 7, labelCount: 7, gzip: true)
        for split in ["test", "t10k"] {
            let data = try DatasetCatalog.load(name: "fashion-mnist", split: split, directory: dir)
            XCTAssertEqual(data.split, "test")
            XCTAssertEqual(data.count, 7)
            XCTAssertEqual(data.labels?.labels, [0, 1, 2, 3, 4, 5, 6])
            XCTAssertEqual(data.labels?.path, "\(dir)/fashion-mnist/t10k-labels-idx1-ubyte.gz")
        }
    }

    func testPrefix() throws {
        try writeSplit(in: dir, stem: "train", count: 10, labelCount: 10)
        let data = try DatasetCatalog.load(name: "mnist", split: "train", directory: dir)
        let head = data.prefix(4)
        XCTAssertEqual(head.count, 4)
        XCTAssertEqual(head.dimension, 6)
        XCTAssertEqual(head.images.pixels, Array(data.images.pixels[0..<24]))
        XCTAssertEqual(head.labels?.labels, [0, 1, 2, 3])
        XCTAssertEqual(head.labels?.count, 4)
        for unchanged in [0, -3, 10, 11] {
            XCTAssertEqual(data.prefix(unchanged).count, 10, "prefix(\(unchanged))")
            XCTAssertEqual(data.prefix(unchanged).images.pixels, data.images.pixels)
        }
    }

    // MARK: - Errors

    func testUnknownDataset() {
        assertDataError(try DatasetCatalog.load(name: "cifar10", split: "train", directory: dir),
                        path: "cifar10",
                        contains: ["unknown dataset", "binarized-mnist, mnist, fashion-mnist, omniglot-small"])
    }

    func testUnknownSplit() {
        assertDataError(try DatasetCatalog.load(name: "binarized-mnist", split: "validation", directory: dir),
                        path: "binarized-mnist",
                        contains: ["unknown split 'validation'", "valid splits: train, valid, test"])
        assertDataError(try DatasetCatalog.load(name: "mnist", split: "valid", directory: dir),
                        path: "mnist", contains: ["unknown split 'valid'", "train, test", "t10k"])
    }

    func testMissingDirectory() {
        let missing = "\(dir)/does-not-exist"
        assertDataError(try DatasetCatalog.load(name: "mnist", split: "test", directory: missing),
                        path: missing, contains: ["dataset directory does not exist"])
    }

    func testMissingFileNamesBothPathsTried() {
        let raw = "\(dir)/t10k-images-idx3-ubyte"
        assertDataError(try DatasetCatalog.load(name: "mnist", split: "test", directory: dir),
                        path: raw, contains: ["missing file", "tried \(raw) and \(raw).gz",
                                              "no mnist/ subdirectory"])
    }

    /// A directory where an IDX file is expected is named as such, not as a missing file.
    func testDirectoryWhereFileIsExpected() throws {
        let images = "\(dir)/binarized-mnist/train-images-idx3-ubyte"
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        assertDataError(try DatasetCatalog.load(name: "binarized-mnist", split: "train", directory: dir),
                        path: images, contains: ["is a directory, expected an IDX file"])
        // Also when only the .gz name is a directory.
        try FileManager.default.removeItem(atPath: images)
        try FileManager.default.createDirectory(atPath: images + ".gz", withIntermediateDirectories: true)
        assertDataError(try DatasetCatalog.load(name: "binarized-mnist", split: "train", directory: dir),
                        path: images + ".gz", contains: ["is a directory, expected an IDX file"])
    }

    func testMissingLabelsFile() throws {
        try writeSplit(in: "\(dir)/omniglot-small", stem: "test", count: 3)
        let raw = "\(dir)/omniglot-small/test-labels-idx1-ubyte"
        assertDataError(try DatasetCatalog.load(name: "omniglot-small", split: "test", directory: dir),
                        path: raw, contains: ["missing file", "tried \(raw) and \(raw).gz"])
    }

    func testImageAndLabelCountMismatch() throws {
        try writeSplit(in: dir, stem: "train", count: 100, labelCount: 99)
        let images = "\(dir)/train-images-idx3-ubyte"
        let labels = "\(dir)/train-labels-idx1-ubyte"
        assertDataError(try DatasetCatalog.load(name: "omniglot-small", split: "train", directory: dir),
                        path: images, contains: ["has 100 images but \(labels) has 99 labels"])
    }

    func testBadFileInsideCatalogNamesThatFile() throws {
        let path = "\(dir)/test-images-idx3-ubyte"
        try writeFile(path, idxBytes(magic: 0x803, dims: [2, 2, 2], data: [1, 2, 3]))
        assertDataError(try DatasetCatalog.load(name: "binarized-mnist", split: "test", directory: dir),
                        path: path, contains: ["truncated: header says 2 images of 2×2 = 8 bytes, file has 3"])
    }
}
