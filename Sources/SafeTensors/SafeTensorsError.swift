/// A problem writing or reading a safetensors file; `path` names the file
/// (or the tensor, for errors raised while building a writer).
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
    /// The file (or, for `SafeTensorsWriter.add`, the tensor name) concerned.
    public let path: String
    /// What was expected and what was found.
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `"<path>: <message>"`.
    public var description: String { "\(path): \(message)" }
}
