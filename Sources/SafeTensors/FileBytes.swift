import FileContents

/// A checkpoint file's bytes, with errors naming the file and why.
enum FileBytes {
    static func contents(of path: String) throws -> [UInt8] {
        do { return try FileContents.read(path) } catch let f as FileContents.Failure {
            switch f {
            case let .cannotOpen(_, reason), let .readFailed(reason):
                throw SafeTensorsError(path: path, message: "cannot read file: \(reason)")
            case .isDirectory:
                throw SafeTensorsError(path: path, message: "is a directory, expected a safetensors file (such as the "
                    + "model.safetensors `vaeas-dist train` writes)")
            }
        }
    }
}
