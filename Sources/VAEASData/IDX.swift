/// Images from an IDX ubyte file with 3 dimensions (count, rows, cols).
public struct IDXImages: Sendable {
    /// The file the images were read from.
    public let path: String
    /// Number of images.
    public let count: Int
    /// Rows per image.
    public let rows: Int
    /// Columns per image.
    public let cols: Int
    /// `count * rows * cols` pixel values, image after image, each row-major.
    public let pixels: [UInt8]
    /// Values per image, `rows * cols`.
    public var dimension: Int { rows * cols }

    /// Builds images from memory, e.g. a subset or synthetic data.
    /// - Precondition: `pixels.count == count * rows * cols`, all non-negative.
    public init(path: String, count: Int, rows: Int, cols: Int, pixels: [UInt8]) {
        precondition(count >= 0 && rows >= 0 && cols >= 0, "negative IDX dimension")
        precondition(pixels.count == count * rows * cols,
                     "\(pixels.count) pixels for \(count) images of \(rows)x\(cols)")
        self.path = path
        self.count = count
        self.rows = rows
        self.cols = cols
        self.pixels = pixels
    }
}

/// Labels from an IDX ubyte file with 1 dimension (count).
public struct IDXLabels: Sendable {
    /// The file the labels were read from.
    public let path: String
    /// Number of labels.
    public let count: Int
    /// One label per sample.
    public let labels: [UInt8]

    /// Builds labels from memory; `count` is `labels.count`.
    public init(path: String, labels: [UInt8]) {
        self.path = path
        self.count = labels.count
        self.labels = labels
    }
}

/// Readers for the IDX format used by MNIST: a big-endian UInt32 magic
/// `0x0000 08 <ndims>` (0x08 = unsigned byte), `ndims` big-endian UInt32
/// dimensions, then the bytes. Files may be raw or gzip-compressed.
public enum IDX {
    static let imagesMagic: UInt32 = 0x0000_0803
    static let labelsMagic: UInt32 = 0x0000_0801

    /// Reads a 3-dimensional IDX ubyte image file (raw or gzip).
    /// - Throws: `DataError` naming the file and what was wrong with it.
    public static func readImages(path: String) throws -> IDXImages {
        let bytes = try readBytes(path: path)
        let dims = try header(bytes, path: path, magic: imagesMagic,
                              what: "images", dimNames: ["count", "rows", "cols"])
        let (count, rows, cols) = (dims[0], dims[1], dims[2])
        let expected = try product(dims, path: path)
        let pixels = try payload(bytes, path: path, headerSize: 16, expected: expected,
                                 shape: "\(count) images of \(rows)×\(cols)")
        return IDXImages(path: path, count: count, rows: rows, cols: cols, pixels: pixels)
    }

    /// Reads a 1-dimensional IDX ubyte label file (raw or gzip).
    /// - Throws: `DataError` naming the file and what was wrong with it.
    public static func readLabels(path: String) throws -> IDXLabels {
        let bytes = try readBytes(path: path)
        let dims = try header(bytes, path: path, magic: labelsMagic,
                              what: "labels", dimNames: ["count"])
        let labels = try payload(bytes, path: path, headerSize: 8, expected: dims[0],
                                 shape: "\(dims[0]) labels")
        return IDXLabels(path: path, labels: labels)
    }

    /// The file's contents, inflated if the file starts with the gzip magic
    /// bytes 0x1f 0x8b (the extension is not consulted).
    /// - Throws: `DataError` if the file cannot be read or the gzip data is
    ///   corrupt or truncated.
    public static func readBytes(path: String) throws -> [UInt8] {
        let raw = try FileSystem.readAll(path)
        return Gzip.isGzip(raw) ? try Gzip.inflate(raw, path: path) : raw
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    private static func bigEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    /// Validates magic and dimensions and returns the dimensions.
    private static func header(_ bytes: [UInt8], path: String, magic: UInt32,
                               what: String, dimNames: [String]) throws -> [Int] {
        let headerSize = 4 + 4 * dimNames.count
        let expectation = "expected magic \(hex(magic)) (IDX ubyte \(what))"
        guard bytes.count >= 4 else {
            throw DataError(path: path, message:
                "truncated header: file has \(bytes.count) bytes, an IDX \(what) header needs "
                + "\(headerSize) (\(expectation))")
        }
        let found = bigEndianUInt32(bytes, at: 0)
        if found != magic {
            var message = "\(expectation), found \(hex(found))"
            if found & 0xFFFF_FF00 == 0x0000_0800 {
                // Right element type, wrong rank: say so, since that usually
                // means images and labels files were swapped.
                let rank = Int(found & 0xFF)
                message += ": \(rank) dimensions where \(what) need \(dimNames.count) "
                    + "(\(dimNames.joined(separator: ", ")))"
                if rank == 1 || rank == 3 {
                    message += "; is this the \(rank == 1 ? "labels" : "images") file?"
                }
            } else if found & 0xFFFF_0000 == 0 {
                message += ": element type 0x\(String((found >> 8) & 0xFF, radix: 16)) is not "
                    + "unsigned byte (0x08)"
            } else {
                message += ": not an IDX file"
            }
            throw DataError(path: path, message: message)
        }
        guard bytes.count >= headerSize else {
            throw DataError(path: path, message:
                "truncated header: file has \(bytes.count) bytes, an IDX \(what) header needs "
                + "\(headerSize)")
        }
        let dims = (0..<dimNames.count).map { Int(bigEndianUInt32(bytes, at: 4 + 4 * $0)) }
        if dims.contains(0) {
            let listed = zip(dimNames, dims).map { "\($0) \($1)" }.joined(separator: ", ")
            throw DataError(path: path, message:
                "header has a zero dimension (\(listed)); expected every dimension to be at least 1")
        }
        return dims
    }

    private static func product(_ dims: [Int], path: String) throws -> Int {
        var total = 1
        for d in dims {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw DataError(path: path, message:
                    "header dimensions \(dims) overflow the addressable size; the header is corrupt")
            }
            total = p
        }
        return total
    }

    private static func payload(_ bytes: [UInt8], path: String, headerSize: Int,
                                expected: Int, shape: String) throws -> [UInt8] {
        let available = bytes.count - headerSize
        if available < expected {
            throw DataError(path: path, message:
                "truncated: header says \(shape) = \(expected) bytes, file has \(available)")
        }
        if available > expected {
            throw DataError(path: path, message:
                "\(available) bytes of data where header says \(expected) (\(shape)); "
                + "the header or the file is wrong")
        }
        // A slice-to-array copy is a single memcpy, not a per-byte loop.
        return Array(bytes[headerSize...])
    }
}
