#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and existence checks with errno-based messages, so that
/// errors say *why* a file could not be read rather than just "nil".
enum FileSystem {
    static func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw DataError(path: path, message: "cannot open: \(errnoText(errno))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DataError(path: path, message: "cannot stat: \(errnoText(errno))")
        }
        guard (st.st_mode & S_IFMT) != S_IFDIR else {
            throw DataError(path: path, message: "is a directory, expected an IDX file")
        }
        // The size is only a hint: the loop below keeps reading until EOF, so a
        // file that grows or a pipe still reads completely.
        var buffer = [UInt8](repeating: 0, count: max(Int(st.st_size), 0) + 1)
        var filled = 0
        while true {
            if filled == buffer.count {
                buffer.append(contentsOf: repeatElement(0, count: max(buffer.count, 65536)))
            }
            let n = buffer.withUnsafeMutableBytes { raw in
                read(fd, raw.baseAddress! + filled, raw.count - filled)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw DataError(path: path, message: "read failed: \(errnoText(errno))")
            }
            if n == 0 { break }
            filled += n
        }
        buffer.removeLast(buffer.count - filled)
        return buffer
    }
}
