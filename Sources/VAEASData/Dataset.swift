/// One split of a named dataset: images and, where the dataset has them, labels.
public struct Dataset: Sendable {
    /// Catalog name, e.g. `"binarized-mnist"`.
    public let name: String
    /// Canonical split name (`"test"` also when loaded as `"t10k"`).
    public let split: String
    /// The images.
    public let images: IDXImages
    /// One label per image, or nil for unlabelled datasets.
    public let labels: IDXLabels?

    /// Builds a dataset from images and optional labels.
    /// - Precondition: `labels`, if present, has one label per image.
    public init(name: String, split: String, images: IDXImages, labels: IDXLabels?) {
        precondition(labels == nil || labels!.count == images.count,
                     "\(images.count) images but \(labels!.count) labels")
        self.name = name
        self.split = split
        self.images = images
        self.labels = labels
    }

    /// Number of samples.
    public var count: Int { images.count }
    /// Values per sample (`rows * cols`).
    public var dimension: Int { images.dimension }

    /// First `limit` samples (limit <= 0 or >= count: unchanged).
    public func prefix(_ limit: Int) -> Dataset {
        guard limit > 0, limit < count else { return self }
        let subImages = IDXImages(path: images.path, count: limit, rows: images.rows,
                                  cols: images.cols,
                                  pixels: Array(images.pixels[0..<(limit * dimension)]))
        let subLabels = labels.map { IDXLabels(path: $0.path, labels: Array($0.labels[0..<limit])) }
        return Dataset(name: name, split: split, images: subImages, labels: subLabels)
    }

    /// The samples at `indices`, in that order.
    /// - Precondition: every index is in `0..<count`.
    public func subset(_ indices: [Int]) -> Dataset {
        let d = dimension
        var pixels = [UInt8]()
        pixels.reserveCapacity(indices.count * d)
        for i in indices {
            precondition(i >= 0 && i < count, "index \(i) outside 0..<\(count)")
            pixels += images.pixels[(i * d)..<((i + 1) * d)]
        }
        let subImages = IDXImages(path: images.path, count: indices.count, rows: images.rows, cols: images.cols, pixels: pixels)
        let subLabels = labels.map { l in IDXLabels(path: l.path, labels: indices.map { l.labels[$0] }) }
        return Dataset(name: name, split: split, images: subImages, labels: subLabels)
    }

    /// `k` samples spread over the split (some files, such as binarized-MNIST's
    /// test set, are sorted by class, so the first k would be one class):
    /// every ⌊count/k⌋-th sample from the first, and a sentence saying so,
    /// e.g. "500 examples: every 20th of test (10000)". k ≤ 0 or k ≥ count:
    /// the whole split.
    public func spread(_ k: Int) -> (dataset: Dataset, indices: [Int], description: String) {
        let n = count
        guard k > 0, k < n else {
            return (self, Array(0..<n), "all \(n) examples of \(split)")
        }
        let stride = n / k
        let indices = (0..<k).map { $0 * stride }
        let which = stride == 1 ? "the first \(k)" : "every \(Dataset.ordinal(stride))"
        return (subset(indices), indices, "\(k) examples: \(which) of \(split) (\(n))")
    }

    /// `k` samples drawn without replacement with a seeded generator, in file
    /// order: the training subset of `data.subset: random`. With labels, the
    /// draw is stratified (each class contributes in proportion to its size,
    /// largest remainders first), so the subset is spread over the classes
    /// even in a file sorted by class; without labels (binarized MNIST) it is
    /// a uniform sample. k ≤ 0 or k ≥ count: the whole split. The generator
    /// is SplitMix64, so the subset is the same on every platform and rank.
    public func randomSample(_ k: Int, seed: UInt64) -> (dataset: Dataset, indices: [Int]) {
        let n = count
        guard k > 0, k < n else { return (self, Array(0..<n)) }
        var rng = SplitMix64(seed: seed)
        var chosen: [Int] = []
        chosen.reserveCapacity(k)
        if let labels {
            var byClass: [Int32: [Int]] = [:]
            for (i, l) in labels.labels.enumerated() { byClass[Int32(l), default: []].append(i) }
            let classes = byClass.keys.sorted()
            // Proportional quotas; the k − Σ⌊·⌋ left over go to the largest remainders (ties: lower class).
            let exact = classes.map { Double(byClass[$0]!.count) * Double(k) / Double(n) }
            var quota = exact.map { Int($0) }
            let order = classes.indices.sorted { (exact[$0] - Double(quota[$0]), -$0) > (exact[$1] - Double(quota[$1]), -$1) }
            for j in order.prefix(k - quota.reduce(0, +)) { quota[j] += 1 }
            for (j, c) in classes.enumerated() {
                chosen += Self.partialShuffle(byClass[c]!, take: quota[j], rng: &rng)
            }
        } else {
            chosen = Self.partialShuffle(Array(0..<n), take: k, rng: &rng)
        }
        chosen.sort()
        return (subset(chosen), chosen)
    }

    /// The first `take` elements of a Fisher–Yates shuffle of `items`.
    private static func partialShuffle(_ items: [Int], take: Int, rng: inout SplitMix64) -> [Int] {
        var a = items
        for i in 0..<min(take, a.count) {
            let j = i + Int(rng.next() % UInt64(a.count - i))
            a.swapAt(i, j)
        }
        return Array(a.prefix(take))
    }

    /// 1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st, …
    public static func ordinal(_ n: Int) -> String {
        let suffix: String
        switch (n % 10, n % 100) {
        case (_, 11...13): suffix = "th"
        case (1, _): suffix = "st"
        case (2, _): suffix = "nd"
        case (3, _): suffix = "rd"
        default: suffix = "th"
        }
        return "\(n)\(suffix)"
    }
}

/// The datasets the trainer knows by name, and where their files live.
public enum DatasetCatalog {
    private struct Entry {
        let name: String
        let splits: [String]
        let aliases: [String: String]
        /// File stem for a canonical split.
        let fileSplit: (String) -> String
        let hasLabels: Bool
        /// Where the system installs it (a Debian package), if anywhere.
        var standardDirectory: String? = nil
    }

    private static let entries: [Entry] = [
        Entry(name: "binarized-mnist", splits: ["train", "valid", "test"], aliases: [:],
              fileSplit: { $0 }, hasLabels: false),
        Entry(name: "mnist", splits: ["train", "test"], aliases: ["t10k": "test"],
              fileSplit: { $0 == "test" ? "t10k" : $0 }, hasLabels: true),
        Entry(name: "fashion-mnist", splits: ["train", "test"], aliases: ["t10k": "test"],
              fileSplit: { $0 == "test" ? "t10k" : $0 }, hasLabels: true,
              standardDirectory: "/usr/share/datasets/fashion-mnist"),
        Entry(name: "omniglot-small", splits: ["train", "test"], aliases: [:],
              fileSplit: { $0 }, hasLabels: true),
    ]

    /// Known dataset names.
    public static let names: [String] = entries.map(\.name)

    /// Valid split names of a dataset (aliases such as `t10k` not included),
    /// or nil for an unknown dataset.
    public static func splits(of name: String) -> [String]? {
        entries.first { $0.name == name }?.splits
    }

    /// Where the system installs a dataset (`apt-get install dataset-fashion-mnist`
    /// puts Fashion-MNIST in /usr/share/datasets/fashion-mnist), or nil.
    public static func standardDirectory(of name: String) -> String? {
        entries.first { $0.name == name }?.standardDirectory
    }

    /// The file stem of a split (`t10k` for mnist's `test`), nil for an unknown name or split.
    static func fileStem(name: String, split: String) -> String? {
        guard let entry = entries.first(where: { $0.name == name }) else { return nil }
        let canonical = entry.aliases[split] ?? split
        return entry.splits.contains(canonical) ? entry.fileSplit(canonical) : nil
    }

    /// The split used for evaluation: `"test"` for every dataset.
    public static func defaultTestSplit(of name: String) -> String { "test" }

    /// Loads one split of a named dataset.
    ///
    /// Resolves the directory: if `directory/<name>` is a directory, use it,
    /// else `directory` itself. Each file may be raw or have `.gz` appended;
    /// the raw name is tried first.
    /// - Throws: `DataError` for an unknown name or split, a missing directory
    ///   or file, a malformed file, or images and labels of different counts.
    public static func load(name: String, split: String, directory: String) throws -> Dataset {
        guard let entry = entries.first(where: { $0.name == name }) else {
            throw DataError(path: name, message:
                "unknown dataset; known datasets: \(names.joined(separator: ", "))")
        }
        let canonical = entry.aliases[split] ?? split
        guard entry.splits.contains(canonical) else {
            var valid = entry.splits.joined(separator: ", ")
            if !entry.aliases.isEmpty {
                valid += " (aliases: " + entry.aliases.sorted { $0.key < $1.key }
                    .map { "\($0.key) = \($0.value)" }.joined(separator: ", ") + ")"
            }
            throw DataError(path: name, message:
                "unknown split '\(split)' of dataset \(name); valid splits: \(valid)")
        }
        guard FileSystem.isDirectory(directory) else {
            throw DataError(path: directory, message:
                "dataset directory does not exist or is not a directory; expected a directory "
                + "containing \(name)/ or the \(name) files themselves")
        }
        let nested = join(directory, name)
        let base = FileSystem.isDirectory(nested) ? nested : directory
        let hint = base == nested ? "" : " (\(directory) has no \(name)/ subdirectory, so the files "
            + "were expected directly in it)"

        let stem = entry.fileSplit(canonical)
        let imagesPath = try locate(join(base, "\(stem)-images-idx3-ubyte"),
                                    dataset: name, split: canonical, hint: hint)
        let images = try IDX.readImages(path: imagesPath)
        var labels: IDXLabels?
        if entry.hasLabels {
            let labelsPath = try locate(join(base, "\(stem)-labels-idx1-ubyte"),
                                        dataset: name, split: canonical, hint: hint)
            let read = try IDX.readLabels(path: labelsPath)
            guard read.count == images.count else {
                throw DataError(path: imagesPath, message:
                    "\(imagesPath) has \(images.count) images but \(labelsPath) has "
                    + "\(read.count) labels; the two files must come from the same split")
            }
            labels = read
        }
        return Dataset(name: name, split: canonical, images: images, labels: labels)
    }

    static func join(_ directory: String, _ file: String) -> String {
        directory.hasSuffix("/") ? directory + file : directory + "/" + file
    }

    private static func locate(_ raw: String, dataset: String, split: String,
                               hint: String) throws -> String {
        let candidates = [raw, raw + ".gz"]
        if let found = candidates.first(where: FileSystem.isRegularFile) { return found }
        if let directory = candidates.first(where: FileSystem.isDirectory) {
            throw DataError(path: directory, message:
                "is a directory, expected an IDX file (raw or gzip) for dataset \(dataset) split \(split)")
        }
        if let other = candidates.first(where: FileSystem.exists) {
            throw DataError(path: other, message:
                "is not a regular file (a device, pipe or socket), expected an IDX file (raw or gzip) for "
                + "dataset \(dataset) split \(split)")
        }
        throw DataError(path: raw, message:
            "missing file for dataset \(dataset) split \(split): tried \(candidates[0]) and "
            + "\(candidates[1]), neither exists\(hint)")
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast, platform-independent
/// generator for the seeded data subset.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
