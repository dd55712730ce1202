#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads with errno-based messages (Foundation's `Data(contentsOf:)`
/// reports a directory as "NSCocoaErrorDomain error 256").
enum FileBytes {
    static func contents(of path: String) throws -> [UInt8] {
        func fail(_ message: String) -> SafeTensorsError { SafeTensorsError(path: path, message: message) }
        func reason() -> String { String(cString: strerror(errno)) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let why = reason()
            var st = stat()
            if stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                throw fail("is a directory, expected a safetensors file (such as the model.safetensors "
                    + "`vaeas-dist train` writes)")
            }
            throw fail("cannot read file: \(why)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail("cannot read file: \(reason())") }
        guard (st.st_mode & S_IFMT) != S_IFDIR else {
            throw fail("is a directory, expected a safetensors file (such as the model.safetensors "
                + "`vaeas-dist train` writes)")
        }
        // The size is a hint; reading continues to end of file (pipes, growing files).
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
                throw fail("cannot read file: \(reason())")
            }
            if n == 0 { break }
            filled += n
        }
        buffer.removeLast(buffer.count - filled)
        return buffer
    }
}
