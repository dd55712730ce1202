import CZlib
import Foundation
import VAEASCore

/// Files written so that a crash leaves either nothing or the whole file.
public enum DurableFile {
    /// Writes `bytes` to `path` (created or truncated) and fsyncs it; errors name the path and the reason.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CheckpointError(path: path, message: "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError(path: path, message: "write failed: \(String(cString: strerror(errno)))")
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw CheckpointError(path: path, message: "fsync failed: \(String(cString: strerror(errno)))") }
    }

    /// Persists a rename inside `dir` (best effort).
    /// `mkdir -p`, with an error naming the component at fault and why (a
    /// file where a directory is needed, no permission, a full disk) rather
    /// than Foundation's "NSCocoaErrorDomain 512".
    public static func makeDirectories(_ path: String) throws {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            var st = stat()
            if stat(partial, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw FileSystemError("cannot create \(path): \(partial) exists and is not a directory")
                }
                continue
            }
            if mkdir(partial, 0o777) != 0 && errno != EEXIST {
                throw FileSystemError("cannot create \(path): mkdir \(partial): \(String(cString: strerror(errno)))")
            }
        }
    }

    public static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    public static func crc32(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { crc32(UnsafeRawBufferPointer($0)) } }

    /// CRC-32 of `bytes`; `continuing` a CRC of earlier bytes gives that of their concatenation.
    public static func crc32(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32? = nil) -> UInt32 {
        var crc: uLong = previous.map { uLong($0) } ?? CZlib.crc32(0, nil, 0)
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, 1 << 30)
            crc = CZlib.crc32(crc, bytes.baseAddress!.assumingMemoryBound(to: Bytef.self) + offset, uInt(n))
            offset += n
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}

/// A file-system operation that failed, with the path and the reason.
public struct FileSystemError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
