import FileContents
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
        do { return try FileContents.read(path) } catch let f as FileContents.Failure {
            switch f {
            case let .cannotOpen(_, reason): throw DataError(path: path, message: "cannot open: \(reason)")
            case .isDirectory: throw DataError(path: path, message: "is a directory, expected an IDX file")
            case let .readFailed(reason): throw DataError(path: path, message: "read failed: \(reason)")
            }
        }
    }
}
