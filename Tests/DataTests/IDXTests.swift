import Foundation
import XCTest
import VAEASData

final class IDXTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try makeTempDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    private func writeImages(_ name: String, count: Int, rows: Int, cols: Int, seed: Int = 7) throws -> [UInt8] {
        let pixels = pattern(count: count * rows * cols, seed: seed)
        try writeFile("\(dir)/\(name)", idxBytes(magic: 0x803, dims: [UInt32(count), UInt32(rows), UInt32(cols)],
                                                 data: pixels))
        return pixels
    }

    private func writeLabels(_ name: String, _ labels: [UInt8]) throws {
        try writeFile("\(dir)/\(name)", idxBytes(magic: 0x801, dims: [UInt32(labels.count)], data: labels))
    }

    // MARK: - Reading

    func testRawImagesRoundTrip() throws {
        let pixels = try writeImages("img", count: 5, rows: 3, cols: 4)
        let images = try IDX.readImages(path: "\(dir)/img")
        XCTAssertEqual(images.path, "\(dir)/img")
        XCTAssertEqual(images.count, 5)
        XCTAssertEqual(images.rows, 3)
        XCTAssertEqual(images.cols, 4)
        XCTAssertEqual(images.dimension, 12)
        XCTAssertEqual(images.pixels, pixels)
    }

    func testGzipImagesRoundTrip() throws {
        let pixels = try writeImages("img", count: 300, rows: 28, cols: 28)
        try gzipFile("\(dir)/img")
        let gz = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/img.gz"))
        XCTAssertLessThan(gz.count, pixels.count, "gzip did not compress; test would not exercise inflate")
        let images = try IDX.readImages(path: "\(dir)/img.gz")
        XCTAssertEqual(images.count, 300)
        XCTAssertEqual(images.pixels, pixels)
    }

    func testGzipIsDetectedByContentNotExtension() throws {
        let pixels = try writeImages("img", count: 2, rows: 2, cols: 2)
        try gzipFile("\(dir)/img")
        try FileManager.default.moveItem(atPath: "\(dir)/img.gz", toPath: "\(dir)/renamed-idx3")
        XCTAssertEqual(try IDX.readImages(path: "\(dir)/renamed-idx3").pixels, pixels)
        // A raw file named .gz must not be inflated either.
        try FileManager.default.copyItem(atPath: "\(dir)/img", toPath: "\(dir)/raw.gz")
        XCTAssertEqual(try IDX.readImages(path: "\(dir)/raw.gz").pixels, pixels)
    }

    func testLabelsRawAndGzip() throws {
        let labels: [UInt8] = [3, 1, 4, 1, 5, 9, 2, 6]
        try writeLabels("lab", labels)
        try gzipFile("\(dir)/lab")
        for path in ["\(dir)/lab", "\(dir)/lab.gz"] {
            let read = try IDX.readLabels(path: path)
            XCTAssertEqual(read.count, 8)
            XCTAssertEqual(read.labels, labels)
            XCTAssertEqual(read.path, path)
        }
    }

    func testReadBytesRawGzipAndMultiMember() throws {
        let a = pattern(count: 100_000, seed: 1)
        let b = pattern(count: 5_000, seed: 2)
        try writeFile("\(dir)/a", a)
        try writeFile("\(dir)/b", b)
        try gzipFile("\(dir)/a")
        try gzipFile("\(dir)/b")
        XCTAssertEqual(try IDX.readBytes(path: "\(dir)/a"), a)
        XCTAssertEqual(try IDX.readBytes(path: "\(dir)/a.gz"), a)
        // `cat a.gz b.gz` is a valid gzip file holding a followed by b.
        let joined = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/a.gz"))
            + Data(contentsOf: URL(fileURLWithPath: "\(dir)/b.gz"))
        try joined.write(to: URL(fileURLWithPath: "\(dir)/ab.gz"))
        XCTAssertEqual(try IDX.readBytes(path: "\(dir)/ab.gz"), a + b)
    }

    func testEmptyGzipPayloadInflatesToNothing() throws {
        try writeFile("\(dir)/empty", [])
        try gzipFile("\(dir)/empty")
        XCTAssertEqual(try IDX.readBytes(path: "\(dir)/empty.gz"), [])
    }

    // MARK: - Bad files

    func testTruncatedHeader() throws {
        let path = "\(dir)/short"
        try writeFile(path, [0, 0, 8, 3, 0, 0, 0, 1, 0, 0])
        assertDataError(try IDX.readImages(path: path), path: path,
                        contains: ["truncated header", "file has 10 bytes", "needs 16"])
        try writeFile(path, [0, 0])
        assertDataError(try IDX.readLabels(path: path), path: path,
                        contains: ["truncated header", "file has 2 bytes", "needs 8"])
    }

    func testWrongMagic() throws {
        let path = "\(dir)/bad-magic"
        try writeFile(path, idxBytes(magic: 0x1234_5678, dims: [1, 1, 1], data: [0]))
        assertDataError(try IDX.readImages(path: path), path: path,
                        contains: ["expected magic 0x00000803 (IDX ubyte images), found 0x12345678"])
        // Float element type (0x0D) with the right rank.
        try writeFile(path, idxBytes(magic: 0x0D03, dims: [1, 1, 1], data: [0, 0, 0, 0]))
        assertDataError(try IDX.readImages(path: path), path: path,
                        contains: ["found 0x00000d03", "not unsigned byte"])
    }

    func testWrongDimsCount() throws {
        let path = "\(dir)/four-dims"
        try writeFile(path, idxBytes(magic: 0x804, dims: [1, 1, 1, 1], data: [0]))
        assertDataError(try IDX.readImages(path: path), path: path,
                        contains: ["expected magic 0x00000803", "found 0x00000804",
                                   "4 dimensions where images need 3"])
        // Labels and images swapped: the message should point at that.
        let labels = "\(dir)/labels"
        try writeLabels("labels", [1, 2])
        assertDataError(try IDX.readImages(path: labels), path: labels,
                        contains: ["1 dimensions where images need 3", "is this the labels file?"])
        let images = "\(dir)/images"
        _ = try writeImages("images", count: 1, rows: 1, cols: 1)
        assertDataError(try IDX.readLabels(path: images), path: images,
                        contains: ["expected magic 0x00000801 (IDX ubyte labels), found 0x00000803",
                                   "is this the images file?"])
    }

    func testZeroDimension() throws {
        let path = "\(dir)/zero"
        try writeFile(path, idxBytes(magic: 0x803, dims: [10, 0, 28], data: []))
        assertDataError(try IDX.readImages(path: path), path: path,
                        contains: ["zero dimension", "rows 0"])
        try writeFile(path, idxBytes(magic: 0x801, dims: [0], data: []))
        assertDataError(try IDX.readLabels(path: path), path: path, contains: ["zero dimension", "count 0"])
    }

    func testTruncatedData() throws {
        let path = "\(dir)/short-data"
        try writeFile(path, idxBytes(magic: 0x803, dims: [3, 2, 2], data: pattern(count: 11)))
        assertDataError(try IDX.readImages(path: path), path: path,
                        contains: ["truncated: header says 3 images of 2×2 = 12 bytes, file has 11"])
        try writeFile(path, idxBytes(magic: 0x801, dims: [5], data: [1, 2, 3]))
        assertDataError(try IDX.readLabels(path: path), path: path,
                        contains: ["truncated: header says 5 labels = 5 bytes, file has 3"])
    }

    func testTrailingData() throws {
        let path = "\(dir)/long-data"
        try writeFile(path, idxBytes(magic: 0x803, dims: [3, 2, 2], data: pattern(count: 13)))
        assertDataError(try IDX.readImages(path: path), path: path,
                        contains: ["13 bytes of data where header says 12"])
        try writeFile(path, idxBytes(magic: 0x801, dims: [2], data: [1, 2, 3]))
        assertDataError(try IDX.readLabels(path: path), path: path,
                        contains: ["3 bytes of data where header says 2"])
    }

    func testCorruptGzip() throws {
        _ = try writeImages("img", count: 200, rows: 28, cols: 28)
        try gzipFile("\(dir)/img")
        var gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/img.gz")))
        // Damage the deflate body; even if it still decodes, the CRC-32 check fails.
        for i in stride(from: 20, to: gz.count - 8, by: 97) { gz[i] ^= 0x5A }
        let path = "\(dir)/corrupt.gz"
        try writeFile(path, gz)
        assertDataError(try IDX.readImages(path: path), path: path, contains: ["corrupt gzip stream"])
        // A damaged CRC alone must be caught too.
        var crcOnly = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/img.gz")))
        crcOnly[crcOnly.count - 8] ^= 0xFF
        try writeFile(path, crcOnly)
        assertDataError(try IDX.readBytes(path: path), path: path, contains: ["corrupt gzip stream"])
    }

    func testTruncatedGzip() throws {
        _ = try writeImages("img", count: 200, rows: 28, cols: 28)
        try gzipFile("\(dir)/img")
        let gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/img.gz")))
        let path = "\(dir)/cut.gz"
        for keep in [gz.count / 2, gz.count - 4, 12] {
            try writeFile(path, Array(gz[..<keep]))
            assertDataError(try IDX.readImages(path: path), path: path, contains: ["truncated gzip stream"])
        }
    }

    /// Peak resident memory of this process, in bytes.
    private func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    /// A truncated `.gz` ends in arbitrary deflate bytes where the trailer's size
    /// field (ISIZE) would be; they must not decide how much memory is reserved.
    /// Here ~1.1 MB of incompressible data, cut short, ends in 0xFFFFFFFF: the
    /// reservation must stay near what the compressed size can plausibly hold.
    func testTruncatedGzipDoesNotReserveFromDamagedTrailer() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let noise = (0..<1_200_000).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        try writeFile("\(dir)/noise", noise)
        try gzipFile("\(dir)/noise")
        var gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/noise.gz")))
        gz.removeLast(gz.count / 10)
        for i in (gz.count - 4)..<gz.count { gz[i] = 0xFF }
        let path = "\(dir)/cut-noise.gz"
        try writeFile(path, gz)

        let before = peakResidentBytes()
        assertDataError(try IDX.readBytes(path: path), path: path, contains: ["gzip stream"])
        let grown = peakResidentBytes() - before
        XCTAssertLessThan(grown, 256 << 20,
                          "reading a \(gz.count)-byte truncated gzip file raised the peak RSS by \(grown >> 20) MB")
    }

    func testUnreadableFile() throws {
        let path = "\(dir)/nope"
        assertDataError(try IDX.readImages(path: path), path: path,
                        contains: ["cannot open", "No such file"])
        assertDataError(try IDX.readBytes(path: dir), path: dir, contains: ["is a directory"])
    }
}

/// `data.subset: random`: a seeded sample in file order, stratified by class where there are labels.
final class RandomSampleTests: XCTestCase {
    func dataset(labels: [UInt8]?) -> Dataset {
        let n = labels?.count ?? 1000
        let px = (0..<n).map { UInt8(truncatingIfNeeded: $0) }
        return Dataset(name: "t", split: "train", images: IDXImages(path: "mem", count: n, rows: 1, cols: 1, pixels: px),
                       labels: labels.map { IDXLabels(path: "mem", labels: $0) })
    }

    func testUnlabelledSampleIsSeededSortedDistinctAndNotThePrefix() {
        let d = dataset(labels: nil)
        let a = d.randomSample(100, seed: 0), b = d.randomSample(100, seed: 0), c = d.randomSample(100, seed: 1)
        XCTAssertEqual(a.indices, b.indices)
        XCTAssertNotEqual(a.indices, c.indices)
        XCTAssertEqual(a.indices, a.indices.sorted())
        XCTAssertEqual(Set(a.indices).count, 100)
        XCTAssertNotEqual(a.indices, Array(0..<100))
        // Spread over the file: every tenth of it holds some of the sample (a prefix would fill one).
        let deciles = Set(a.indices.map { $0 / 100 })
        XCTAssertEqual(deciles.count, 10, "\(a.indices)")
        XCTAssertEqual(a.dataset.images.pixels, a.indices.map { UInt8(truncatingIfNeeded: $0) })
        XCTAssertEqual(d.randomSample(0, seed: 0).indices.count, 1000)
        XCTAssertEqual(d.randomSample(5000, seed: 0).indices.count, 1000)
    }

    /// A file sorted by class (like binarized MNIST's test set): each class's
    /// share of the sample is its share of the file, ±1.
    func testLabelledSampleIsStratifiedInASortedFile() {
        let sizes = [300, 100, 250, 350]
        let labels = sizes.enumerated().flatMap { c, n in [UInt8](repeating: UInt8(c), count: n) }
        let d = dataset(labels: labels)
        let s = d.randomSample(97, seed: 3)
        XCTAssertEqual(s.indices.count, 97)
        let got = (0..<4).map { c in s.dataset.labels!.labels.filter { $0 == c }.count }
        for (c, n) in sizes.enumerated() {
            let exact = Double(n) * 97 / 1000
            XCTAssertLessThanOrEqual(abs(Double(got[c]) - exact), 1, "class \(c): \(got[c]) vs \(exact)")
        }
        XCTAssertEqual(s.indices, s.indices.sorted())
    }
}
