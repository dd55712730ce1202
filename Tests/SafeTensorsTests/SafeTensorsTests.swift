import Foundation
import XCTest
import SafeTensors

final class SafeTensorsTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "vaeas-st-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        chmod(dir, 0o755)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Values chosen to catch byte-order and conversion mistakes.
    static let special: [Float] = [0, -0.0, 1, -1.5, .pi, .infinity, -.infinity,
                                   .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                                   Float(bitPattern: 0x7FC0_1234), 1e-20, 123456.789]

    private func sampleWriter() throws -> SafeTensorsWriter {
        var w = SafeTensorsWriter()
        w.metadata = ["epoch": "12", "config": "{\"lr\": 0.001}\nline2\t\\ ü β"]
        try w.add("z.weight", shape: [3, 4], data: Self.special)
        try Self.special.withUnsafeBufferPointer { buf in
            try w.add("a\"quoted\"", shape: [2, 2, 3], data: buf)
        }
        try w.add("ü/β", shape: [], data: [42.5])
        try w.add("empty", shape: [0, 5], data: [])
        try w.add("x\\y", shape: [5], data: [1, 2, 3, 4, 5])
        return w
    }

    private func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    private func headerLength(_ b: [UInt8]) -> Int {
        Int((0..<8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(b[$1]) })
    }

    // MARK: - Round trip

    func testRoundTripIsBitExact() throws {
        let path = "\(dir)/model.safetensors"
        let w = try sampleWriter()
        try w.write(to: path)
        XCTAssertEqual(try bytes(path), w.serialized())

        let f = try SafeTensorsFile.load(path: path)
        XCTAssertEqual(f.path, path)
        XCTAssertEqual(f.names, ["z.weight", "a\"quoted\"", "ü/β", "empty", "x\\y"])
        XCTAssertEqual(f.metadata, w.metadata)
        XCTAssertEqual(try f.shape(of: "z.weight"), [3, 4])
        XCTAssertEqual(try f.shape(of: "a\"quoted\""), [2, 2, 3])
        XCTAssertEqual(try f.shape(of: "ü/β"), [])
        XCTAssertEqual(try f.shape(of: "empty"), [0, 5])
        XCTAssertEqual(try f.floats("z.weight").map(\.bitPattern), Self.special.map(\.bitPattern))
        XCTAssertEqual(try f.floats("a\"quoted\"").map(\.bitPattern), Self.special.map(\.bitPattern))
        XCTAssertEqual(try f.floats("ü/β"), [42.5])
        XCTAssertEqual(try f.floats("empty"), [])
        XCTAssertEqual(try f.floats("x\\y"), [1, 2, 3, 4, 5])
    }

    func testLargeTensorRoundTripAndNoMetadata() throws {
        let values = (0..<300_000).map { Float($0) * 0.37 - 1000 }
        var w = SafeTensorsWriter()
        try w.add("big", shape: [600, 500], data: values)
        let path = "\(dir)/big.safetensors"
        try w.write(to: path)
        let f = try SafeTensorsFile.load(path: path)
        XCTAssertEqual(f.metadata, [:])
        XCTAssertEqual(try f.floats("big"), values)
        XCTAssertFalse(String(decoding: try bytes(path).prefix(200), as: UTF8.self).contains("__metadata__"))
    }

    func testHeaderIsPaddedToEightBytesAndDataIsPacked() throws {
        for length in 1...17 {
            var w = SafeTensorsWriter()
            try w.add(String(repeating: "n", count: length), shape: [2], data: [1, 2])
            try w.add("second", shape: [1, 3], data: [3, 4, 5])
            let b = w.serialized()
            let n = headerLength(b)
            XCTAssertEqual((8 + n) % 8, 0, "name length \(length): header length \(n)")
            XCTAssertEqual(b.count, 8 + n + 5 * 4, "tensors must be packed with no gaps")
            let header = String(decoding: b[8..<(8 + n)], as: UTF8.self)
            XCTAssertTrue(header.hasPrefix("{"))
            XCTAssertEqual(header.trimmingCharacters(in: .whitespaces).last, "}")
            XCTAssertTrue(header.contains("\"data_offsets\":[0,8]"), header)
            XCTAssertTrue(header.contains("\"data_offsets\":[8,20]"), header)
            // Little-endian float32 1.0 at the start of the data.
            XCTAssertEqual(Array(b[(8 + n)..<(8 + n + 4)]), [0x00, 0x00, 0x80, 0x3F])
        }
    }

    // MARK: - Writer errors

    func testWriterRejectsBadTensors() throws {
        var w = SafeTensorsWriter()
        try w.add("a", shape: [2, 2], data: [1, 2, 3, 4])
        XCTAssertThrowsError(try w.add("b", shape: [2, 3], data: [1, 2, 3, 4])) { error in
            XCTAssertTrue("\(error)".contains("shape [2, 3] holds 6 values but 4 were given"), "\(error)")
        }
        XCTAssertThrowsError(try w.add("a", shape: [1], data: [1])) { error in
            XCTAssertTrue("\(error)".contains("duplicate tensor name"), "\(error)")
        }
        XCTAssertThrowsError(try w.add("__metadata__", shape: [1], data: [1]))
        XCTAssertThrowsError(try w.add("neg", shape: [-1], data: []))
        // The failed adds must not have changed the file.
        let f = try roundTrip(w)
        XCTAssertEqual(f.names, ["a"])
    }

    private func roundTrip(_ w: SafeTensorsWriter) throws -> SafeTensorsFile {
        let path = "\(dir)/rt-\(UUID().uuidString).safetensors"
        try w.write(to: path)
        return try SafeTensorsFile.load(path: path)
    }

    // MARK: - Atomic write

    private func leftoverTemps() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
    }

    func testWriteReplacesExistingFile() throws {
        let path = "\(dir)/ckpt.safetensors"
        try Data("old contents".utf8).write(to: URL(fileURLWithPath: path))
        let w = try sampleWriter()
        try w.write(to: path)
        XCTAssertEqual(try bytes(path), w.serialized())
        XCTAssertEqual(try leftoverTemps(), [])
    }

    func testFailedWriteLeavesPreviousFileIntactAndRemovesNothingElse() throws {
        let path = "\(dir)/ckpt.safetensors"
        let old = Array("previous checkpoint".utf8)
        try Data(old).write(to: URL(fileURLWithPath: path))
        // A directory where the temp file must go makes creating it fail even
        // for root, for whom permission bits would not.
        let blocker = "\(path).tmp-\(getpid())"
        try FileManager.default.createDirectory(atPath: blocker, withIntermediateDirectories: false)
        XCTAssertThrowsError(try sampleWriter().write(to: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            XCTAssertTrue("\(error)".contains("cannot write"), "\(error)")
        }
        XCTAssertEqual(try bytes(path), old)
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: blocker, isDirectory: &isDir) && isDir.boolValue,
                      "write must not remove a temp path it did not create")
    }

    func testUnwritableDirectoryNeverTruncatesExistingFile() throws {
        let sub = "\(dir)/readonly"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
        let path = "\(sub)/ckpt.safetensors"
        let old = Array("previous checkpoint".utf8)
        try Data(old).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(chmod(sub, 0o555), 0)
        defer { chmod(sub, 0o755) }
        let w = try sampleWriter()
        do {
            try w.write(to: path)
            // Root ignores permission bits; then the write must be complete.
            XCTAssertEqual(geteuid(), 0, "write into a read-only directory succeeded for a non-root user")
            XCTAssertEqual(try bytes(path), w.serialized())
        } catch {
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            XCTAssertEqual(try bytes(path), old)
        }
        let temps = try FileManager.default.contentsOfDirectory(atPath: sub).filter { $0.contains(".tmp-") }
        XCTAssertEqual(temps, [])
    }

    func testWriteToDirectoryPathFailsAndCleansUp() throws {
        let path = "\(dir)/is-a-directory"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: "\(path)/inside"))
        XCTAssertThrowsError(try sampleWriter().write(to: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            XCTAssertTrue("\(error)".contains("renaming"), "\(error)")
        }
        XCTAssertEqual(try bytes("\(path)/inside"), Array("keep".utf8))
        XCTAssertEqual(try leftoverTemps(), [], "the temp file must be removed after a failed rename")
    }

    func testWriteIntoMissingDirectoryFails() {
        let path = "\(dir)/no/such/dir/ckpt.safetensors"
        XCTAssertThrowsError(try sampleWriter().write(to: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            XCTAssertTrue("\(error)".contains("No such file or directory"), "\(error)")
        }
    }

    // MARK: - Reader errors

    private func assertLoadFails(_ contents: [UInt8], _ phrases: [String],
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let path = "\(dir)/bad-\(UUID().uuidString).safetensors"
        try Data(contents).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try SafeTensorsFile.load(path: path), file: file, line: line) { error in
            XCTAssertTrue(error is SafeTensorsError, "\(type(of: error))", file: file, line: line)
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), "error does not name the file: \(text)", file: file, line: line)
            for p in phrases {
                XCTAssertTrue(text.contains(p), "error lacks \"\(p)\": \(text)", file: file, line: line)
            }
        }
    }

    /// A file with a hand-written header (padded) and `dataBytes` zero bytes of data.
    private func file(header: String, dataBytes: Int) -> [UInt8] {
        var h = Array(header.utf8)
        while (8 + h.count) % 8 != 0 { h.append(UInt8(ascii: " ")) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(h.count).littleEndian) { out.append(contentsOf: $0) }
        return out + h + [UInt8](repeating: 0, count: dataBytes)
    }

    func testReaderRejectsShortFile() throws {
        try assertLoadFails([1, 2, 3], ["file too short: 3 bytes"])
    }

    func testReaderRejectsHeaderLengthBeyondFile() throws {
        var b = try sampleWriter().serialized()
        b.removeLast(b.count - 20)
        try assertLoadFails(b, ["goes beyond the file", "12 bytes after the 8-byte length"])
    }

    func testReaderRejectsInvalidJSON() throws {
        try assertLoadFails(file(header: "{\"a\": {\"dtype\": \"F32\",", dataBytes: 0), ["not valid JSON"])
        try assertLoadFails(file(header: "[1, 2]", dataBytes: 0), ["not an object"])
    }

    func testReaderRejectsOtherDtypes() throws {
        let h = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}"
        try assertLoadFails(file(header: h, dataBytes: 4), ["tensor \"h\" has dtype F16; only F32 is supported"])
    }

    func testReaderRejectsOffsetsOutOfRange() throws {
        let h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}"
        try assertLoadFails(file(header: h, dataBytes: 8),
                            ["tensor \"w\": data_offsets [0, 16] out of range", "has 8 bytes"])
        let reversed = "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}"
        try assertLoadFails(file(header: reversed, dataBytes: 8), ["out of range"])
    }

    func testReaderRejectsOffsetsNotMatchingShape() throws {
        let h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}"
        try assertLoadFails(file(header: h, dataBytes: 32),
                            ["span 16 bytes but shape [2, 3] of F32 needs 24"])
    }

    func testReaderRejectsMalformedEntries() throws {
        try assertLoadFails(file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}",
                                 dataBytes: 8), ["shape is not a list of non-negative integers"])
        try assertLoadFails(file(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", dataBytes: 8),
                            ["data_offsets is not a pair of integers"])
        try assertLoadFails(file(header: "{\"__metadata__\":{\"a\":1}}", dataBytes: 0),
                            ["__metadata__ value for \"a\" is not a string"])
    }

    // MARK: - Layout of the data buffer (as the reference `safetensors` library checks it)

    /// The reference library sorts the tensors by data_offsets and requires each to start where the
    /// previous one ended (the first at 0) and the last to end at the end of the file.
    func testReaderRejectsOverlappingTensors() throws {
        let h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}"
        try assertLoadFails(file(header: h, dataBytes: 12),
                            ["tensor \"b\"", "[4, 12]", "overlaps tensor \"a\"", "[0, 8]"])
        // The same range twice is an overlap too, whichever name comes first in the header.
        let same = "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"
        try assertLoadFails(file(header: same, dataBytes: 8), ["overlaps tensor"])
    }

    func testReaderRejectsTrailingBytesAfterLastTensor() throws {
        let h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
        try assertLoadFails(file(header: h, dataBytes: 8),
                            ["4 trailing bytes", "data buffer has 8 bytes", "last tensor ends at 4"])
        var b = try sampleWriter().serialized()
        b.append(0)
        try assertLoadFails(b, ["1 trailing byte"])
        try assertLoadFails(file(header: "{}", dataBytes: 4), ["4 trailing bytes", "no tensors"])
    }

    func testReaderRejectsGapsInTheDataBuffer() throws {
        let middle = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}"
        try assertLoadFails(file(header: middle, dataBytes: 12),
                            ["tensor \"b\"", "[8, 12]", "bytes 4..<8", "gap"])
        let start = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"
        try assertLoadFails(file(header: start, dataBytes: 8), ["tensor \"a\"", "bytes 0..<4", "gap"])
    }

    func testReaderAcceptsTensorsInAnyOffsetOrderAndEmptyTensorsAnywhere() throws {
        let h = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
            + "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"f\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[8,8]}}"
        let path = "\(dir)/order.safetensors"
        var bytes = file(header: h, dataBytes: 0)
        for v: Float in [1, 2, 3] { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let f = try SafeTensorsFile.load(path: path)
        XCTAssertEqual(f.names, ["b", "e", "a", "f"])
        XCTAssertEqual(try f.floats("a"), [1, 2])
        XCTAssertEqual(try f.floats("b"), [3])
        XCTAssertEqual(try f.floats("e"), [])
    }

    func testReaderRejectsDirectory() throws {
        let path = "\(dir)/model.safetensors"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        XCTAssertThrowsError(try SafeTensorsFile.load(path: path)) { error in
            XCTAssertTrue("\(error)".contains("\(path): is a directory, expected a safetensors file"), "\(error)")
            XCTAssertFalse("\(error)".contains("NSCocoaErrorDomain"), "\(error)")
        }
    }

    func testMissingTensorListsAvailableNames() throws {
        let path = "\(dir)/m.safetensors"
        try sampleWriter().write(to: path)
        let f = try SafeTensorsFile.load(path: path)
        for call in [{ _ = try f.floats("decoder.w") }, { _ = try f.shape(of: "decoder.w") }] {
            XCTAssertThrowsError(try call()) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(path), text)
                XCTAssertTrue(text.contains("no tensor named \"decoder.w\""), text)
                XCTAssertTrue(text.contains("available: z.weight, a\"quoted\", ü/β, empty, x\\y"), text)
            }
        }
    }

    func testReaderRejectsMissingFile() throws {
        let path = "\(dir)/absent.safetensors"
        XCTAssertThrowsError(try SafeTensorsFile.load(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            XCTAssertTrue("\(error)".contains("cannot read file"), "\(error)")
        }
    }
}
