import Foundation
/// A directory that may hold a dataset, and why it is looked at: the user's
/// `--data-dir`, `data.dir`, `$VAEAS_DATA_DIR`, the run's recorded `data.dir`,
/// or the dataset's standard location.
public struct DataLocation: Equatable, Sendable, CustomStringConvertible {
    /// The directory: the dataset's folder, or its parent.
    public let directory: String
    /// Where it came from, e.g. `"$VAEAS_DATA_DIR"` or `"data.dir in runs/x/config.yaml"`.
    public let origin: String

    public init(_ directory: String, origin: String) {
        self.directory = directory
        self.origin = origin
    }

    /// `"<directory> (<origin>)"`.
    public var description: String { "\(directory) (\(origin))" }

    /// The standard location of `name` as a location, if it has one.
    public static func standard(for name: String) -> DataLocation? {
        DatasetCatalog.standardDirectory(of: name).map { DataLocation($0, origin: "standard location of \(name)") }
    }

    /// Where to look for dataset `name`, in order, for every command: `explicit`
    /// alone when given (`--data-dir`, or `data.dir` for `train`); else `recorded`
    /// (the `data.dir` of the run a checkpoint came from), then `$VAEAS_DATA_DIR`,
    /// then the dataset's standard location (so that a VAEAS_DATA_DIR holding
    /// the other datasets does not hide Fashion-MNIST's).
    public static func searchOrder(explicit: DataLocation?, recorded: DataLocation? = nil, dataset name: String,
                                   environment: [String: String] = ProcessInfo.processInfo.environment) -> [DataLocation] {
        if let explicit { return [explicit] }
        var out: [DataLocation] = []
        if let recorded { out.append(recorded) }
        if let env = environment["VAEAS_DATA_DIR"], !env.isEmpty { out.append(DataLocation(env, origin: "$VAEAS_DATA_DIR")) }
        if let standard = standard(for: name) { out.append(standard) }
        return out
    }
}

extension DatasetCatalog {
    /// Whether `directory` holds dataset `name`: it has a `name/` subdirectory,
    /// or the split's images file (raw or `.gz`) lies directly in it. Whether
    /// the files are whole is for `load` to say.
    public static func holds(name: String, split: String, directory: String) -> Bool {
        whyNot(name: name, split: split, directory: directory) == nil
    }

    /// nil when `directory` holds the dataset, else what is missing.
    static func whyNot(name: String, split: String, directory: String) -> String? {
        guard FileSystem.isDirectory(directory) else {
            return FileSystem.exists(directory) ? "not a directory" : "does not exist"
        }
        if FileSystem.isDirectory(join(directory, name)) { return nil }
        guard let stem = fileStem(name: name, split: split) else { return nil }   // load names the bad name or split
        let raw = join(directory, "\(stem)-images-idx3-ubyte")
        if FileSystem.exists(raw) || FileSystem.exists(raw + ".gz") { return nil }
        return "no \(name)/ subdirectory and no \(stem)-images-idx3-ubyte[.gz] in it"
    }

    /// Loads one split from the first of `locations` that holds the dataset
    /// (`holds`), in order; empty and repeated directories are skipped.
    ///
    /// A location that holds the dataset but whose files are missing or bad is
    /// an error naming the file, never a reason to look further. When no
    /// location holds it: with one location, the error `load(name:split:directory:)`
    /// gives; with several, an error that lists every place tried and what it lacked.
    public static func load(name: String, split: String, from locations: [DataLocation]) throws
        -> (dataset: Dataset, location: DataLocation) {
        var seen = Set<String>()
        let tried = locations.filter { !$0.directory.isEmpty && seen.insert($0.directory).inserted }
        guard let first = tried.first else {
            throw DataError(path: name, message: "no directory to look for the dataset in: give --data-dir, "
                            + "set data.dir or VAEAS_DATA_DIR")
        }
        if fileStem(name: name, split: split) == nil || tried.count == 1 {
            // An unknown name or split, or a single place: the single-directory errors say it best.
            let chosen = tried.first { holds(name: name, split: split, directory: $0.directory) } ?? first
            return (try load(name: name, split: split, directory: chosen.directory), chosen)
        }
        for location in tried where holds(name: name, split: split, directory: location.directory) {
            return (try load(name: name, split: split, directory: location.directory), location)
        }
        let places = tried.map { "\($0.directory) (\($0.origin): \(whyNot(name: name, split: split, directory: $0.directory) ?? "?"))" }
        throw DataError(path: name, message: "dataset \(name) split \(split) not found; looked in "
                        + places.joined(separator: "; ")
                        + ". Give --data-dir (or data.dir) the folder holding \(name)/ or its IDX files")
    }
}
