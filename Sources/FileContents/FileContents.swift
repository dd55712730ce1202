#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a whole file with errno-based reasons, for the modules that read
/// user-given paths (data, checkpoints, configs): Foundation's
/// `Data(contentsOf:)` calls a directory "NSCocoaErrorDomain error 256" and
/// /dev/null a permission problem. Anything readable (a regular file,
/// /dev/null, a pipe such as `--config <(…)`) is read to its end; the size is
/// only a hint. Each caller turns a `FileContents.Failure` into its own error,
/// naming what kind of file it expected.
public enum FileContents {
    public enum Failure: Error, Equatable {
        /// stat or open failed: errno and its text.
        case cannotOpen(code: Int32, reason: String)
        case isDirectory
        case readFailed(reason: String)

        /// ENOENT / ENOTDIR: nothing at that path.
        public var isMissing: Bool {
            if case let .cannotOpen(code, _) = self { return code == ENOENT || code == ENOTDIR }
            return false
        }
    }

    public static func read(_ path: String) throws -> [UInt8] {
        func reason(_ code: Int32) -> String { String(cString: strerror(code)) }
        var st = stat()
        guard stat(path, &st) == 0 else { let c = errno; throw Failure.cannotOpen(code: c, reason: reason(c)) }
        guard (st.st_mode & S_IFMT) != S_IFDIR else { throw Failure.isDirectory }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { let c = errno; throw Failure.cannotOpen(code: c, reason: reason(c)) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: max(Int(st.st_size), 0) + 1)
        var filled = 0
        while true {
            if filled == buffer.count { buffer.append(contentsOf: repeatElement(0, count: max(buffer.count, 65536))) }
            let n = buffer.withUnsafeMutableBytes { raw in posixRead(fd, raw.baseAddress! + filled, raw.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure.readFailed(reason: reason(errno))
            }
            if n == 0 { break }
            filled += n
        }
        buffer.removeLast(buffer.count - filled)
        return buffer
    }
}

/// At file scope `read` is the C function, not `FileContents.read(_:)`.
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }
