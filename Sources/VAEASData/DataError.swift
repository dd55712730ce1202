/// A problem with a dataset file or a dataset request.
///
/// `path` names the file, directory or dataset the problem is about and
/// `message` says what was expected and what was found, so that the
/// description alone is enough for a user to fix the input.
public struct DataError: Error, CustomStringConvertible, Sendable {
    /// The file, directory or dataset name the error is about.
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
