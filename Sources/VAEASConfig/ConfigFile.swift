#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a config file with errno-based messages: Foundation's
/// `Data(contentsOf:)` calls a directory "NSCocoaErrorDomain error 256" and
/// /dev/null a permission problem. Anything readable (a regular file,
/// /dev/null, a pipe such as `--config <(…)`) is read to its end.
enum ConfigFile {
    static func contents(of path: String) throws -> [UInt8] {
        func fail(_ message: String) -> ConfigError { ConfigError(key: nil, source: path, message: message) }
        func reason() -> String { String(cString: strerror(errno)) }
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            let why = String(cString: strerror(code))
            throw fail(code == ENOENT || code == ENOTDIR ? "config file not found (\(why))"
                                                         : "cannot read config file (\(why))")
        }
        guard (st.st_mode & S_IFMT) != S_IFDIR else {
            throw fail("is a directory, expected a YAML config file")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("cannot read config file (\(reason()))") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var filled = 0
        while true {
            if filled == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            let n = buffer.withUnsafeMutableBytes { raw in read(fd, raw.baseAddress! + filled, raw.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("cannot read config file (\(reason()))")
            }
            if n == 0 { break }
            filled += n
        }
        buffer.removeLast(buffer.count - filled)
        return buffer
    }
}
