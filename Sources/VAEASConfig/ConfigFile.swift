import FileContents

/// A config file's bytes, with errors naming the file and why. Anything
/// readable (a regular file, /dev/null, a pipe such as `--config <(…)`) is read to its end.
enum ConfigFile {
    static func contents(of path: String) throws -> [UInt8] {
        func fail(_ message: String) -> ConfigError { ConfigError(key: nil, source: path, message: message) }
        do { return try FileContents.read(path) } catch let f as FileContents.Failure {
            switch f {
            case let .cannotOpen(_, reason):
                throw fail(f.isMissing ? "config file not found (\(reason))" : "cannot read config file (\(reason))")
            case .isDirectory: throw fail("is a directory, expected a YAML config file")
            case let .readFailed(reason): throw fail("cannot read config file (\(reason))")
            }
        }
    }
}
