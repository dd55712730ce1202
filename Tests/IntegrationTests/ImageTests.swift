import Foundation
import VAEAS
import VAEASData
import XCTest

/// PNG output: the encoder checked by an independent decoder (Python's zlib and
/// struct only), and `reconstruct` / `sample` on a freshly trained small model.
final class ImageTests: XCTestCase {
    /// Parses every chunk, checks each CRC, inflates IDAT and strips the filter
    /// bytes (all must be 0: we only write filter None). Prints
    /// `width height bitdepth colortype` on one line and the hex pixels on the next.
    static let decoder = """
    import sys, struct, zlib
    b = open(sys.argv[1], 'rb').read()
    assert b[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'bad signature'
    i, chunks = 8, []
    while i < len(b):
        (n,) = struct.unpack('>I', b[i:i+4]); t = b[i+4:i+8]; d = b[i+8:i+8+n]
        (crc,) = struct.unpack('>I', b[i+8+n:i+12+n])
        assert zlib.crc32(t + d) & 0xffffffff == crc, 'CRC mismatch in ' + t.decode()
        chunks.append((t, d)); i += 12 + n
    assert [t for t, _ in chunks][0] == b'IHDR' and chunks[-1][0] == b'IEND', [t for t, _ in chunks]
    w, h, depth, color, comp, filt, inter = struct.unpack('>IIBBBBB', chunks[0][1])
    raw = zlib.decompress(b''.join(d for t, d in chunks if t == b'IDAT'))
    assert len(raw) == h * (w + 1), (len(raw), w, h)
    rows = [raw[y*(w+1):(y+1)*(w+1)] for y in range(h)]
    assert all(r[0] == 0 for r in rows), 'non-zero filter byte'
    print(w, h, depth, color)
    print(b''.join(r[1:] for r in rows).hex())
    """

    /// (width, height, pixels) as Python reads the file; fails the test on any
    /// decoding error.
    func decode(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> (width: Int, height: Int, pixels: [UInt8])? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", ImageTests.decoder, path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            XCTFail("python could not decode \(path): \(errText)", file: file, line: line)
            return nil
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let header = lines[0].split(separator: " ").map { Int($0)! }
        XCTAssertEqual(header[2], 8, "bit depth", file: file, line: line)
        XCTAssertEqual(header[3], 0, "colour type (grayscale)", file: file, line: line)
        let hex = Array(lines[1].utf8)
        func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
        let pixels = stride(from: 0, to: hex.count, by: 2).map { nibble(hex[$0]) << 4 | nibble(hex[$0 + 1]) }
        return (header[0], header[1], pixels)
    }

    /// Side of a grid of n tiles of 28 pixels with the default 2-pixel padding.
    func gridSide(_ n: Int) -> Int { n * 28 + (n + 1) * 2 }

    func testEncodedGrayPNGDecodesInPythonToTheSamePixels() throws {
        // Non-square, odd width, and every byte value: catches swapped sides,
        // lost scanline filter bytes and signed/unsigned slips.
        let width = 37, height = 11
        let pixels = (0..<(width * height)).map { UInt8(($0 * 7 + $0 / width) % 256) }
        let dir = CLI.temporaryDirectory("png")
        let path = dir + "/known.png"
        try PNG.writeGray(path: path, width: width, height: height, pixels: pixels)
        XCTAssertEqual(try PNG.encodeGray(width: width, height: height, pixels: pixels),
                       [UInt8](FileManager.default.contents(atPath: path)!))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0 != "known.png" }
        XCTAssertEqual(leftovers, [], "the temporary file was renamed away")
        let decoded = try XCTUnwrap(try decode(path))
        XCTAssertEqual(decoded.width, width)
        XCTAssertEqual(decoded.height, height)
        XCTAssertEqual(decoded.pixels, pixels)

        XCTAssertThrowsError(try PNG.encodeGray(width: 3, height: 3, pixels: [0, 1])) {
            XCTAssertTrue("\($0)".contains("3×3"), "\($0)")
        }
        XCTAssertThrowsError(try PNG.writeGray(path: dir + "/no/such/dir.png", width: 1, height: 1, pixels: [0])) {
            XCTAssertTrue("\($0)".contains(dir + "/no/such/dir.png"), "\($0)")
        }
    }

    func testGridPlacesTilesWithBlackPadding() {
        let white = [Float](repeating: 1, count: 4), grey = [Float](repeating: 0.5, count: 4)
        let g = PNG.grid(images: [white, grey, white], rows: 2, cols: 2, columns: 2, padding: 1)
        XCTAssertEqual(g.width, 7)
        XCTAssertEqual(g.height, 7)
        let row1: [UInt8] = [0, 255, 255, 0, 128, 128, 0]
        let row4: [UInt8] = [0, 255, 255, 0, 0, 0, 0]
        XCTAssertEqual(Array(g.pixels[0..<7]), [UInt8](repeating: 0, count: 7))
        XCTAssertEqual(Array(g.pixels[7..<14]), row1)
        XCTAssertEqual(Array(g.pixels[28..<35]), row4, "a short last row stays black after its last tile")
    }

    func testReconstructAndSampleWritePNGsOfTheGridSize() throws {
        let dir = CLI.temporaryDirectory("images")
        let train = try CLI.run(smallArguments(out: dir))
        XCTAssertEqual(train.status, 0, train.output)
        let model = dir + "/model.safetensors"

        // 10 images, 4 per row: 3 bands of originals + reconstructions = 6 grid rows.
        let recon = try CLI.run(["reconstruct", "--checkpoint", model, "--data-dir", CLI.sharedData, "--split", "test",
                                 "--count", "10", "--columns", "4", "--out", dir + "/recon.png"])
        XCTAssertEqual(recon.status, 0, recon.output)
        XCTAssertTrue(recon.stdout.contains("10") && recon.stdout.contains("mean BCE"), recon.stdout)
        let bce = recon.stdout.components(separatedBy: "mean BCE ").last.flatMap { Double($0.split(separator: " ")[0]) }
        let bceValue = try XCTUnwrap(bce, recon.stdout)
        XCTAssertGreaterThan(bceValue, 20, "a 1-epoch model does not reconstruct MNIST almost perfectly")
        XCTAssertLessThan(bceValue, 784 * log(2.0), "better than the uniform decoder after one epoch")
        let r = try XCTUnwrap(try decode(dir + "/recon.png"))
        XCTAssertEqual(r.width, gridSide(4))
        XCTAssertEqual(r.height, gridSide(6))
        XCTAssertEqual(r.pixels.count, gridSide(4) * gridSide(6))
        // The originals are binarized, so the first tile holds only black and white.
        var firstTile: [UInt8] = []
        for y in 2..<30 {
            let start = y * r.width + 2
            firstTile += r.pixels[start..<(start + 28)]
        }
        XCTAssertTrue(Set(firstTile).isSubset(of: [0, 255]) && firstTile.contains(255), "original tile: \(Set(firstTile))")

        // Under mpirun -n 2 only rank 0 writes; 6 samples, 4 per row: 2 grid rows.
        let sample = try CLI.run(["sample", "--checkpoint", model, "--count", "6", "--columns", "4", "--seed", "3",
                                  "--out", dir + "/sample.png"], ranks: 2)
        XCTAssertEqual(sample.status, 0, sample.output)
        XCTAssertEqual(sample.stdout.components(separatedBy: "sample:").count - 1, 1, "printed once: \(sample.stdout)")
        let s = try XCTUnwrap(try decode(dir + "/sample.png"))
        XCTAssertEqual(s.width, gridSide(4))
        XCTAssertEqual(s.height, gridSide(2))
        XCTAssertEqual(s.pixels.count, gridSide(4) * gridSide(2))

        // The same seed draws the same codes, so the file is byte-identical.
        let again = try CLI.run(["sample", "--checkpoint", model, "--count", "6", "--columns", "4", "--seed", "3",
                                 "--out", dir + "/sample2.png"])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/sample.png"),
                       FileManager.default.contents(atPath: dir + "/sample2.png"))

        // A 10×10 dataset against the 784-input checkpoint: the error names both.
        let small = dir + "/small/binarized-mnist"
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        var idx: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 10, 0, 0, 0, 10]
        idx += [UInt8](repeating: 255, count: 500)
        XCTAssertTrue(FileManager.default.createFile(atPath: small + "/test-images-idx3-ubyte", contents: Data(idx)))
        let mismatch = try CLI.run(["reconstruct", "--checkpoint", model, "--data-dir", dir + "/small", "--split", "test",
                                    "--count", "5", "--out", dir + "/mismatch.png"])
        XCTAssertNotEqual(mismatch.status, 0, mismatch.output)
        for part in [model, "784", "binarized-mnist", "10×10"] {
            XCTAssertTrue(mismatch.stderr.contains(part), "stderr lacks '\(part)': \(mismatch.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/mismatch.png"))
    }

    /// binarized-MNIST's test file is MNIST's test set sorted by class (class
    /// c is the c-th block, of MNIST's test counts per class), so its first 32
    /// images are all zeros. `reconstruct --count 32` shows every 312th image
    /// instead: every class, and the output says which images.
    func testReconstructShowsImagesSpreadOverTheSplit() throws {
        let dir = CLI.temporaryDirectory("images-spread")
        let train = try CLI.run(smallArguments(out: dir))
        XCTAssertEqual(train.status, 0, train.output)
        let recon = try CLI.run(["reconstruct", "--checkpoint", dir + "/model.safetensors", "--data-dir", CLI.sharedData,
                                 "--split", "test", "--count", "32", "--columns", "8", "--out", dir + "/recon.png"])
        XCTAssertEqual(recon.status, 0, recon.output)
        XCTAssertTrue(recon.stdout.contains("images: 32 examples: every 312th of test (10000)"), recon.stdout)

        // Which test images are the originals in the picture (exact pixel match)?
        let test = try DatasetCatalog.load(name: "binarized-mnist", split: "test", directory: CLI.sharedData)
        let binary = test.images.pixels.map { $0 >= 128 ? UInt8(255) : 0 }
        let r = try XCTUnwrap(try decode(dir + "/recon.png"))
        var shown: [Int] = []
        for k in 0..<32 {
            let band = k / 8, column = k % 8
            let x0 = 2 + column * 30, y0 = 2 + 2 * band * 30   // bands: originals, then reconstructions
            var tile: [UInt8] = []
            for y in y0..<(y0 + 28) { tile += r.pixels[(y * r.width + x0)..<(y * r.width + x0 + 28)] }
            let match = (0..<test.count).first { i in binary[(i * 784)..<((i + 1) * 784)].elementsEqual(tile) }
            shown.append(try XCTUnwrap(match, "original tile \(k) is no test image"))
        }
        XCTAssertEqual(shown, (0..<32).map { $0 * 312 })
        let classEnds = [980, 2115, 3147, 4157, 5139, 6031, 6989, 8017, 8991, 10000]   // cumulative MNIST test counts
        let classes = Set(shown.map { i in classEnds.firstIndex { i < $0 }! })
        XCTAssertEqual(classes.count, 10, "classes shown: \(classes.sorted())")
    }

    func testImageCommandErrors() throws {
        let dir = CLI.temporaryDirectory("image-errors")
        let missing = dir + "/nope/model.safetensors"
        for args in [["sample", "--checkpoint", missing, "--out", dir + "/s.png"],
                     ["reconstruct", "--checkpoint", missing, "--data-dir", CLI.sharedData, "--split", "test",
                      "--out", dir + "/r.png"]] {
            let r = try CLI.run(args)
            XCTAssertNotEqual(r.status, 0, r.output)
            XCTAssertTrue(r.stderr.contains(missing), r.stderr)
        }
        for args in [["sample", "--checkpoint", missing, "--out", dir + "/s.jpg"],
                     ["reconstruct", "--checkpoint", missing, "--data-dir", CLI.sharedData, "--split", "test",
                      "--out", dir + "/r.jpg"]] {
            let r = try CLI.run(args)
            XCTAssertNotEqual(r.status, 0, r.output)
            XCTAssertTrue(r.stderr.contains(".png") && r.stderr.contains(dir + "/"), r.stderr)
        }
        let zero = try CLI.run(["sample", "--checkpoint", missing, "--count", "0", "--out", dir + "/s.png"])
        XCTAssertNotEqual(zero.status, 0, zero.output)
        XCTAssertTrue(zero.stderr.contains("--count"), zero.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/s.png"))
    }
}
