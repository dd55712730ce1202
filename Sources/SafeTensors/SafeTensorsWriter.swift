#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a safetensors file of F32 tensors.
///
/// Layout: 8-byte little-endian header length N, N bytes of JSON header
/// (padded with spaces so the data starts on an 8-byte boundary), then the
/// tensors' little-endian float32 values packed in insertion order.
public struct SafeTensorsWriter {
    private struct Entry {
        let name: String
        let shape: [Int]
        let values: [Float]
    }

    private var entries: [Entry] = []
    private var namesSeen: Set<String> = []

    /// String metadata stored under `__metadata__` (written sorted by key).
    public var metadata: [String: String] = [:]

    public init() {}

    /// Adds a tensor; values are copied.
    /// - Throws: `SafeTensorsError` if the shape has a negative dimension, its
    ///   product differs from `data.count`, or the name is empty, reserved
    ///   (`__metadata__`) or already added.
    public mutating func add(_ name: String, shape: [Int], data: UnsafeBufferPointer<Float>) throws {
        try validate(name, shape: shape, count: data.count)
        entries.append(Entry(name: name, shape: shape, values: Array(data)))
        namesSeen.insert(name)
    }

    /// Adds a tensor; see `add(_:shape:data:)` with a buffer pointer.
    public mutating func add(_ name: String, shape: [Int], data: [Float]) throws {
        try validate(name, shape: shape, count: data.count)
        entries.append(Entry(name: name, shape: shape, values: data))
        namesSeen.insert(name)
    }

    private func validate(_ name: String, shape: [Int], count: Int) throws {
        guard !name.isEmpty else {
            throw SafeTensorsError(path: name, message: "tensor name must not be empty")
        }
        guard name != "__metadata__" else {
            throw SafeTensorsError(path: name, message:
                "tensor name __metadata__ is reserved for the metadata block")
        }
        guard !namesSeen.contains(name) else {
            throw SafeTensorsError(path: name, message: "duplicate tensor name; each name may be added once")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw SafeTensorsError(path: name, message: "shape \(shape) has a negative dimension")
        }
        var product = 1
        for d in shape {
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw SafeTensorsError(path: name, message: "shape \(shape) overflows")
            }
            product = p
        }
        guard product == count else {
            throw SafeTensorsError(path: name, message:
                "shape \(shape) holds \(product) values but \(count) were given")
        }
    }

    /// The header JSON, padded so that 8 + its length is a multiple of 8.
    private func headerBytes() -> [UInt8] {
        var parts: [String] = []
        if !metadata.isEmpty {
            let fields = metadata.sorted { $0.key < $1.key }
                .map { JSONText.quoted($0.key) + ":" + JSONText.quoted($0.value) }
            parts.append("\"__metadata__\":{" + fields.joined(separator: ",") + "}")
        }
        var offset = 0
        for e in entries {
            let end = offset + e.values.count * MemoryLayout<Float>.size
            let shape = e.shape.map(String.init).joined(separator: ",")
            parts.append(JSONText.quoted(e.name) + ":{\"dtype\":\"F32\",\"shape\":[" + shape
                + "],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var bytes = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        let padding = (8 - bytes.count % 8) % 8
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        return bytes
    }

    /// The complete file contents.
    public func serialized() -> [UInt8] {
        let header = headerBytes()
        let dataSize = entries.reduce(0) { $0 + $1.values.count * MemoryLayout<Float>.size }
        var out = [UInt8]()
        out.reserveCapacity(8 + header.count + dataSize)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for e in entries {
            #if _endian(little)
            e.values.withUnsafeBytes { out.append(contentsOf: $0) }
            #else
            for v in e.values {
                withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            }
            #endif
        }
        return out
    }

    /// Atomic: writes `<path>.tmp-<pid>` in the same directory, fsyncs, renames
    /// over `path`; on failure removes the temp and throws an error naming the
    /// path. An existing file at `path` is never left truncated.
    public func write(to path: String) throws {
        let bytes = serialized()
        let tmp = "\(path).tmp-\(getpid())"
        func failure(_ what: String, _ code: Int32) -> SafeTensorsError {
            SafeTensorsError(path: path, message:
                "cannot write: \(what) failed: \(String(cString: strerror(code)))"
                + " (the previous file, if any, is unchanged)")
        }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("creating temporary file \(tmp)", errno) }
        // Only a temp file this call created is removed; a pre-existing
        // directory of that name (which makes open fail) is left alone.
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            defer { close(fd) }
            var written = 0
            while written < bytes.count {
                let n = bytes.withUnsafeBytes { raw in
                    posixWrite(fd, raw.baseAddress! + written, raw.count - written)
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("writing \(tmp)", errno)
                }
                written += n
            }
            // Without fsync before rename, a crash can leave an empty file at
            // `path` on filesystems that reorder metadata and data writes.
            guard fsync(fd) == 0 else { throw failure("fsync of \(tmp)", errno) }
        }
        guard rename(tmp, path) == 0 else { throw failure("renaming \(tmp) over it", errno) }
        ok = true
        // Persist the rename itself; best effort, the data is already safe.
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}

/// At file scope `write` resolves to the C function, not `SafeTensorsWriter.write(to:)`.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
