import CZlib

/// gzip decompression through zlib.
enum Gzip {
    /// gzip is recognised by content, not by file name, so a renamed or
    /// extension-less file still decodes.
    static func isGzip(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
    }

    /// The largest uncompressed/compressed ratio the first output reservation
    /// assumes; more output than that grows the buffer as it arrives.
    static let initialRatioCap = 32

    /// Inflates a complete gzip file (one or more concatenated members).
    /// `path` is used only for error messages.
    static func inflate(_ input: [UInt8], path: String) throws -> [UInt8] {
        var stream = z_stream()
        // 16 + MAX_WBITS selects the gzip wrapper; the inflateInit2 macro is not
        // importable, so the versioned entry point is called directly.
        var status = inflateInit2_(&stream, 16 + MAX_WBITS, zlibVersion(),
                                   Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw DataError(path: path, message: "zlib inflateInit2 failed with status \(status)")
        }
        defer { inflateEnd(&stream) }

        // ISIZE (last 4 bytes) is the uncompressed size mod 2^32 of the last
        // member; it makes a single allocation likely, and growth (doubling, as
        // output arrives) covers the rest. In a truncated or damaged file those
        // bytes are arbitrary, so the first reservation never exceeds
        // `initialRatioCap` × the compressed size: real IDX data compresses
        // 5–25:1, so an honest ISIZE is still used as is, while a damaged one
        // costs at most a few times the file, not deflate's 1032:1 worst case.
        var guess = 1 << 16
        if input.count >= 18 {
            let n = input.count
            let isize = Int(input[n - 4]) | Int(input[n - 3]) << 8
                | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
            guess = max(min(isize, input.count * initialRatioCap), guess)
        }
        var out = [UInt8](repeating: 0, count: guess)
        var produced = 0
        let chunkLimit = Int(UInt32.max / 2)

        try input.withUnsafeBufferPointer { inBuf in
            var consumed = 0
            while true {
                if produced == out.count {
                    out.append(contentsOf: repeatElement(0, count: out.count))
                }
                if stream.avail_in == 0 && consumed < inBuf.count {
                    let take = min(inBuf.count - consumed, chunkLimit)
                    stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress! + consumed)
                    stream.avail_in = UInt32(take)
                    consumed += take
                }
                let room = min(out.count - produced, chunkLimit)
                status = out.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress! + produced
                    stream.avail_out = UInt32(room)
                    let result = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced += room - Int(stream.avail_out)
                    return result
                }
                let inputLeft = Int(stream.avail_in) + (inBuf.count - consumed)
                switch status {
                case Z_STREAM_END:
                    if inputLeft == 0 { return }
                    // Concatenated members are valid gzip (what `cat a.gz b.gz` makes).
                    guard inflateReset(&stream) == Z_OK else {
                        throw DataError(path: path, message: "zlib inflateReset failed")
                    }
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    if inputLeft == 0 {
                        throw DataError(path: path, message:
                            "truncated gzip stream: \(inBuf.count) compressed bytes end before the "
                            + "end-of-stream marker (\(produced) bytes decompressed); the file is "
                            + "incomplete, re-download or re-create it")
                    }
                case Z_MEM_ERROR:
                    throw DataError(path: path, message: "out of memory while inflating gzip data")
                default:
                    let detail = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                    throw DataError(path: path, message:
                        "corrupt gzip stream: \(detail) (after \(produced) decompressed bytes); "
                        + "the file is damaged, re-download or re-create it")
                }
            }
        }
        out.removeLast(out.count - produced)
        return out
    }
}
