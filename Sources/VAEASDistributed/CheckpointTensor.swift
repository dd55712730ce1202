import SafeTensors
import VAEASCore

extension SafeTensorsFile {
    /// The float tensor `name` of a checkpoint, present and of shape `shape`,
    /// else a `CheckpointError` naming the file, the tensor and both shapes:
    /// the one check every loader (model, optimizer state, label layers) uses.
    public func checkpointFloats(_ name: String, shape: [Int]) throws -> [Float] {
        guard names.contains(name) else { throw CheckpointError(path: path, message: "missing tensor '\(name)'") }
        let s = try self.shape(of: name)
        guard s == shape else { throw CheckpointError(path: path, message: "tensor '\(name)' has shape \(s), expected \(shape)") }
        return try floats(name)
    }
}
