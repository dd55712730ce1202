import VAEASCore
import VAEASDistributed
import CZlib
#if canImport(Glibc)
import Glibc
#endif

/// Minimal 8-bit grayscale PNG output (colour type 0, no interlace), enough to
/// look at reconstructions and samples without an imaging dependency.
///
/// Every scanline uses filter type 0 (None): images here are a few hundred
/// pixels wide and mostly flat black, which zlib compresses well unfiltered.
public enum PNG {
    /// The PNG bytes of a `width` × `height` grayscale image, `pixels` row-major
    /// (0 = black, 255 = white).
    /// - Throws: `PNGError` if a side is not positive or too large for PNG, the
    ///   pixel count is not `width * height`, or zlib fails.
    public static func encodeGray(width: Int, height: Int, pixels: [UInt8]) throws -> [UInt8] {
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw PNGError(path: nil, message: "image size \(width)×\(height): both sides must be in 1…\(Int32.max)")
        }
        guard pixels.count == width * height else {
            throw PNGError(path: nil, message: "\(pixels.count) pixels for a \(width)×\(height) image (expected \(width * height))")
        }
        var raw = [UInt8](repeating: 0, count: height * (width + 1))
        for y in 0..<height {
            raw.replaceSubrange((y * (width + 1) + 1)..<((y + 1) * (width + 1)),
                                with: pixels[(y * width)..<((y + 1) * width)])
        }
        let compressed = try deflate(raw)
        // A chunk length is a 31-bit field; one IDAT is enough below that.
        guard compressed.count <= Int(Int32.max) else {
            throw PNGError(path: nil, message: "compressed image data of \(compressed.count) bytes exceeds one PNG chunk")
        }

        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var ihdr: [UInt8] = []
        appendBigEndian(UInt32(width), to: &ihdr)
        appendBigEndian(UInt32(height), to: &ihdr)
        ihdr += [8, 0, 0, 0, 0]  // bit depth 8, grayscale, deflate, adaptive filtering, no interlace
        appendChunk("IHDR", ihdr, to: &out)
        appendChunk("IDAT", compressed, to: &out)
        appendChunk("IEND", [], to: &out)
        return out
    }

    /// Encodes and writes atomically: a temporary file in the same directory,
    /// then a rename, so a reader never sees a half-written image.
    /// - Throws: `PNGError` naming `path` if encoding or any file operation fails.
    public static func writeGray(path: String, width: Int, height: Int, pixels: [UInt8]) throws {
        let bytes: [UInt8]
        do { bytes = try encodeGray(width: width, height: height, pixels: pixels) } catch let e as PNGError {
            throw PNGError(path: path, message: e.message)
        }
        let tmp = "\(path).tmp-\(getpid())"
        func failure(_ what: String, _ code: Int32) -> PNGError {
            PNGError(path: path, message: "cannot write: \(what) failed: \(String(cString: strerror(code)))")
        }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("creating temporary file \(tmp)", errno) }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        do {
            defer { close(fd) }
            var written = 0
            while written < bytes.count {
                let n = bytes.withUnsafeBytes { raw in posixWrite(fd, raw.baseAddress! + written, raw.count - written) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("writing \(tmp)", errno)
                }
                written += n
            }
        }
        guard rename(tmp, path) == 0 else { throw failure("renaming \(tmp) over it", errno) }
        ok = true
    }

    /// Tiles equally sized images left to right, top to bottom, `columns` per
    /// row, with `padding` black pixels between tiles and around the border
    /// (the layout of torchvision's `make_grid`). Values in [0, 1] map to grey
    /// levels 0…255 (clamped), so MNIST-style images show white strokes on black.
    /// A short last row is left black after its last image.
    /// - Precondition: `rows`, `cols`, `columns` ≥ 1, `padding` ≥ 0, and every
    ///   image has `rows * cols` values.
    public static func grid(images: [[Float]], rows: Int, cols: Int, columns: Int,
                            padding: Int = 2) -> (width: Int, height: Int, pixels: [UInt8]) {
        precondition(rows >= 1 && cols >= 1 && columns >= 1 && padding >= 0,
                     "grid: rows, cols, columns must be ≥ 1 and padding ≥ 0")
        let gridRows = max(1, (images.count + columns - 1) / columns)
        let width = columns * cols + (columns + 1) * padding
        let height = gridRows * rows + (gridRows + 1) * padding
        var pixels = [UInt8](repeating: 0, count: width * height)
        for (k, image) in images.enumerated() {
            precondition(image.count == rows * cols, "grid: image \(k) has \(image.count) values, expected \(rows * cols)")
            let x0 = padding + (k % columns) * (cols + padding)
            let y0 = padding + (k / columns) * (rows + padding)
            for r in 0..<rows {
                for c in 0..<cols {
                    let v = image[r * cols + c]
                    // NaN maps to black rather than trapping in the UInt8 conversion.
                    let clamped = v.isNaN ? 0 : min(max(v, 0), 1)
                    pixels[(y0 + r) * width + x0 + c] = UInt8((clamped * 255).rounded())
                }
            }
        }
        return (width, height, pixels)
    }

    private static func deflate(_ data: [UInt8]) throws -> [UInt8] {
        var size = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = out.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { i in compress2(o.baseAddress, &size, i.baseAddress, uLong(data.count), 6) }
        }
        guard status == Z_OK else {
            throw PNGError(path: nil, message: "zlib compress2 failed with status \(status)")
        }
        out.removeSubrange(Int(size)...)
        return out
    }

    private static func appendBigEndian(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    /// Length, type, data, and the CRC-32 of type + data (PNG spec §5.3).
    private static func appendChunk(_ type: String, _ data: [UInt8], to out: inout [UInt8]) {
        appendBigEndian(UInt32(data.count), to: &out)
        let typed = Array(type.utf8) + data
        out += typed
        // zlib's crc32 takes a 32-bit length; chunks are bounded by Int32.max above.
        let crc = typed.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        appendBigEndian(UInt32(truncatingIfNeeded: crc), to: &out)
    }
}

/// A PNG that could not be encoded or written; `path` is nil for in-memory encoding.
public struct PNGError: Error, CustomStringConvertible {
    public let path: String?
    public let message: String
    public var description: String { path.map { "\($0): \(message)" } ?? message }
}

/// At file scope `write` resolves to the C function, not a method of the same name.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
