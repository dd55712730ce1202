import Foundation

/// A safetensors file read into memory. Only F32 tensors are supported.
public struct SafeTensorsFile: Sendable {
    private struct Entry: Sendable {
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    /// The file that was loaded.
    public let path: String
    /// The `__metadata__` block (empty if absent).
    public let metadata: [String: String]
    /// Tensor names in header order.
    public let names: [String]

    private let entries: [String: Entry]
    /// The data buffer: the file after the 8-byte length and the header.
    private let data: [UInt8]

    private init(path: String, metadata: [String: String], names: [String],
                 entries: [String: Entry], data: [UInt8]) {
        self.path = path
        self.metadata = metadata
        self.names = names
        self.entries = entries
        self.data = data
    }

    /// The reference implementation's limit on the JSON header (100 MB).
    public static let maxHeaderLength = 100_000_000

    /// Reads and validates a whole file, as strictly as the reference
    /// `safetensors` library: sorted by offset, the tensors' byte ranges must
    /// cover the data buffer exactly (the first at 0, each where the previous
    /// one ends, the last at the end of the file), so overlapping ranges, gaps
    /// and trailing bytes are errors; tensors may be listed in any order.
    /// - Throws: `SafeTensorsError` if the path is a directory or unreadable,
    ///   the file is too short, has a header length beyond the file or over
    ///   100 MB, invalid JSON, a dtype other than F32, data offsets out of
    ///   range, inconsistent with the shape, overlapping, leaving a gap, or
    ///   followed by trailing bytes.
    public static func load(path: String) throws -> SafeTensorsFile {
        func fail(_ message: String) -> SafeTensorsError {
            SafeTensorsError(path: path, message: message)
        }
        let bytes = try FileBytes.contents(of: path)
        guard bytes.count >= 8 else {
            throw fail("file too short: \(bytes.count) bytes, a safetensors file starts with an "
                + "8-byte header length")
        }
        var headerLength: UInt64 = 0
        for i in (0..<8).reversed() { headerLength = headerLength << 8 | UInt64(bytes[i]) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw fail("header length \(headerLength) goes beyond the file, which has "
                + "\(bytes.count - 8) bytes after the 8-byte length; the file is truncated or "
                + "not safetensors")
        }
        guard headerLength <= UInt64(maxHeaderLength) else {
            throw fail("header length \(headerLength) exceeds the safetensors limit of \(maxHeaderLength) bytes; "
                + "the file is damaged or not safetensors")
        }
        let headerEnd = 8 + Int(headerLength)
        let headerBytes = bytes[8..<headerEnd]
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes))
        } catch {
            throw fail("header is not valid JSON (\(headerLength) bytes at offset 8): "
                + "\((error as NSError).localizedDescription)")
        }
        guard let object = json as? [String: Any] else {
            throw fail("header JSON is not an object")
        }
        let orderedKeys = JSONText.topLevelKeys(headerBytes)
        guard Set(orderedKeys).count == orderedKeys.count else {
            throw fail("header has duplicate keys")
        }
        let dataLength = bytes.count - headerEnd

        var metadata: [String: String] = [:]
        if let raw = object["__metadata__"] {
            guard let dict = raw as? [String: Any] else {
                throw fail("__metadata__ is not an object of strings")
            }
            for (k, v) in dict {
                guard let s = v as? String else {
                    throw fail("__metadata__ value for \"\(k)\" is not a string")
                }
                metadata[k] = s
            }
        }

        var names: [String] = []
        var entries: [String: Entry] = [:]
        for name in orderedKeys where name != "__metadata__" {
            guard let info = object[name] as? [String: Any] else {
                throw fail("tensor \"\(name)\": header entry is not an object")
            }
            guard let dtype = info["dtype"] as? String else {
                throw fail("tensor \"\(name)\": missing dtype")
            }
            guard dtype == "F32" else {
                throw fail("tensor \"\(name)\" has dtype \(dtype); only F32 is supported "
                    + "(convert it to float32 before saving)")
            }
            guard let shapeAny = info["shape"] as? [Any],
                  let shape = integers(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw fail("tensor \"\(name)\": shape is not a list of non-negative integers")
            }
            guard let offsetsAny = info["data_offsets"] as? [Any],
                  let offsets = integers(offsetsAny), offsets.count == 2 else {
                throw fail("tensor \"\(name)\": data_offsets is not a pair of integers")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end else {
                throw fail("tensor \"\(name)\": data_offsets [\(begin), \(end)] out of range; expected "
                    + "0 ≤ begin ≤ end")
            }
            guard end <= dataLength else {
                throw fail("tensor \"\(name)\": data_offsets [\(begin), \(end)] out of range; the "
                    + "data buffer has \(dataLength) bytes (the file is truncated or its header is wrong)")
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor \"\(name)\": shape \(shape) overflows") }
                count = p
            }
            guard count <= Int.max / 4, end - begin == count * 4 else {
                throw fail("tensor \"\(name)\": data_offsets [\(begin), \(end)] span "
                    + "\(end - begin) bytes but shape \(shape) of F32 needs \(count * 4)")
            }
            names.append(name)
            entries[name] = Entry(shape: shape, begin: begin, end: end)
        }
        try checkLayout(names: names, entries: entries, dataLength: dataLength, path: path)
        return SafeTensorsFile(path: path, metadata: metadata, names: names, entries: entries,
                               data: Array(bytes[headerEnd...]))
    }

    /// The reference library's layout rule: sorted by (begin, end), each tensor
    /// starts where the previous one ended (the first at 0) and the last ends at
    /// the end of the data buffer.
    private static func checkLayout(names: [String], entries: [String: Entry], dataLength: Int,
                                    path: String) throws {
        func fail(_ message: String) -> SafeTensorsError {
            SafeTensorsError(path: path, message: message)
        }
        func range(_ e: Entry) -> String { "[\(e.begin), \(e.end)]" }
        // Header order breaks ties, so messages are deterministic.
        let sorted = names.enumerated().sorted {
            let a = entries[$0.element]!, b = entries[$1.element]!
            return (a.begin, a.end, $0.offset) < (b.begin, b.end, $1.offset)
        }.map(\.element)
        var covered = 0
        var previous: String? = nil
        for name in sorted {
            let e = entries[name]!
            if e.begin < covered {
                let p = previous!
                throw fail("tensor \"\(name)\": data_offsets \(range(e)) overlaps tensor \"\(p)\" "
                    + "\(range(entries[p]!)); each byte of the data buffer must belong to one tensor")
            }
            if e.begin > covered {
                let after = previous.map { " (after tensor \"\($0)\" \(range(entries[$0]!)))" } ?? ""
                throw fail("tensor \"\(name)\": data_offsets \(range(e)) leave a gap: bytes "
                    + "\(covered)..<\(e.begin) of the data buffer belong to no tensor\(after); the tensors must "
                    + "cover the data buffer exactly")
            }
            if e.end > e.begin || previous == nil { previous = name }
            covered = e.end
        }
        if covered < dataLength {
            let extra = dataLength - covered
            let last = sorted.isEmpty ? "there are no tensors"
                : "the last tensor ends at \(covered) (\"\(sorted.last!)\")"
            throw fail("\(extra) trailing byte\(extra == 1 ? "" : "s") after the last tensor: the data buffer "
                + "has \(dataLength) bytes but \(last); the file is damaged or was not written as one "
                + "safetensors file")
        }
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            // Reject fractional values such as 2.5 rather than truncating them.
            guard d.rounded() == d, let i = Int(exactly: n.int64Value) else { return nil }
            out.append(i)
        }
        return out
    }

    private func entry(_ name: String) throws -> Entry {
        guard let e = entries[name] else {
            throw SafeTensorsError(path: path, message:
                "no tensor named \"\(name)\"; available: \(names.joined(separator: ", "))")
        }
        return e
    }

    /// The shape of a tensor.
    /// - Throws: `SafeTensorsError` listing the available names if absent.
    public func shape(of name: String) throws -> [Int] { try entry(name).shape }

    /// The non-finite values (NaN, ±Inf) of a tensor: how many, and the first
    /// one's flat index and value; nil if every value is finite. Reads the
    /// data in place, without copying the tensor.
    /// - Throws: `SafeTensorsError` listing the available names if absent.
    public func nonFinite(_ name: String) throws -> (count: Int, firstIndex: Int, firstValue: Float)? {
        let e = try entry(name)
        var count = 0, firstIndex = 0, firstValue: Float = 0
        data.withUnsafeBytes { raw in
            for i in 0..<((e.end - e.begin) / 4) {
                let bits = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: e.begin + 4 * i, as: UInt32.self))
                // Exponent all ones: Inf or NaN.
                guard bits & 0x7F80_0000 == 0x7F80_0000 else { continue }
                if count == 0 { firstIndex = i; firstValue = Float(bitPattern: bits) }
                count += 1
            }
        }
        return count == 0 ? nil : (count, firstIndex, firstValue)
    }

    /// A tensor's values in row-major order.
    /// - Throws: `SafeTensorsError` listing the available names if absent.
    public func floats(_ name: String) throws -> [Float] {
        let e = try entry(name)
        let count = (e.end - e.begin) / 4
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            data.withUnsafeBytes { raw in
                #if _endian(little)
                // Offsets need not be 4-aligned, so copy bytes rather than rebinding.
                UnsafeMutableRawBufferPointer(buffer)
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[e.begin..<e.end]))
                #else
                for i in 0..<count {
                    let bits = raw.loadUnaligned(fromByteOffset: e.begin + 4 * i, as: UInt32.self)
                    buffer[i] = Float(bitPattern: UInt32(littleEndian: bits))
                }
                #endif
            }
            initialized = count
        }
    }
}
