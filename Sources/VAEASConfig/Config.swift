import Foundation
import Yams

/// A configuration problem the user can fix: it names the key (when there is
/// one), where the value came from, and what was expected.
public struct ConfigError: Error, CustomStringConvertible {
    /// The "section.key" (or bare section name) at fault, if the problem is tied to one.
    public let key: String?
    /// The file path, or "--set" for command-line overrides; nil for checks on the resolved config.
    public let source: String?
    /// 1-based line in `source`, when the YAML parser could tell.
    public let line: Int?
    /// The problem; `description` adds the key and source around it.
    public let message: String
    /// Some messages read better with key and source woven in; those are shown as is.
    let selfContained: Bool

    public init(key: String?, source: String?, line: Int? = nil, message: String, selfContained: Bool = false) {
        self.key = key
        self.source = source
        self.line = line
        self.message = message
        self.selfContained = selfContained
    }

    /// The full, user-facing text.
    public var description: String {
        if selfContained { return message }
        let whereText = ConfigError.location(source, line)
        if let key {
            return "\(key): \(message)" + (whereText.isEmpty ? "" : " \(whereText)")
        }
        guard let source else { return message }
        let at = line.map { ":\($0)" } ?? ""
        return "\(source)\(at): \(message)"
    }

    /// "(from --set)", "(in FILE, line N)", or "".
    static func location(_ source: String?, _ line: Int?) -> String {
        guard let source else { return "" }
        if source == "--set" { return "(from --set)" }
        return "(in \(source)" + (line.map { ", line \($0)" } ?? "") + ")"
    }
}

/// A single configuration value, typed as its key declares.
public enum ConfigValue: Equatable, Sendable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case string(String)

    /// The value as it would be written after `--set key=`; floats round-trip exactly.
    public var description: String {
        switch self {
        case let .int(v): return String(v)
        case let .float(v): return formatFloat(v)
        case let .string(s): return s
        }
    }

    var kindDescription: String {
        switch self {
        case .int: return "the integer"
        case .float: return "the number"
        case .string: return "the string"
        }
    }

    var quotedForMessage: String {
        if case let .string(s) = self { return "'\(s)'" }
        return description
    }
}

/// Dataset selection and preprocessing.
public struct DataConfig: Equatable, Sendable {
    public let name: String
    /// "" means: resolve from $VAEAS_DATA_DIR or the dataset's standard location.
    public let dir: String
    public let binarize: Binarization
    /// 0 = all training samples.
    public let limit: Int
    public let testSplit: String

    public init(name: String, dir: String, binarize: Binarization, limit: Int, testSplit: String) {
        self.name = name; self.dir = dir; self.binarize = binarize; self.limit = limit; self.testSplit = testSplit
    }
}

/// Network shapes.
public struct ModelConfig: Equatable, Sendable {
    public let latent: Int
    public let hidden: Int
    public let encLayers: Int
    public let decLayers: Int
    public let clsLayers: Int
    public let activation: Activation
    public let initialization: Initialization

    public init(latent: Int, hidden: Int, encLayers: Int, decLayers: Int, clsLayers: Int, activation: Activation,
                initialization: Initialization) {
        self.latent = latent; self.hidden = hidden; self.encLayers = encLayers; self.decLayers = decLayers; self.clsLayers = clsLayers; self.activation = activation; self.initialization = initialization
    }
}

/// The training objective.
public struct ObjectiveConfig: Equatable, Sendable {
    public let kind: ObjectiveKind
    public let alpha: Double
    public let beta: Double
    /// 0 = one label per training sample.
    public let labels: Int
    public let labelAssignment: LabelAssignmentKind
    public let miEstimator: MIEstimator
    public let softmax: SoftmaxKind
    /// Tree only.
    public let leafOrder: LeafOrder

    public init(kind: ObjectiveKind, alpha: Double, beta: Double, labels: Int, labelAssignment: LabelAssignmentKind,
                miEstimator: MIEstimator, softmax: SoftmaxKind, leafOrder: LeafOrder) {
        self.kind = kind; self.alpha = alpha; self.beta = beta; self.labels = labels; self.labelAssignment = labelAssignment; self.miEstimator = miEstimator; self.softmax = softmax
        self.leafOrder = leafOrder
    }
}

/// Optimiser and loop control.
public struct TrainingConfig: Equatable, Sendable {
    public let epochs: Int
    /// Global batch, summed over ranks.
    public let batch: Int
    public let lr: Double
    public let beta1: Double
    public let beta2: Double
    public let eps: Double
    /// 0 ... 2^32-1.
    public let seed: Int
    public let samples: Int
    /// 0 = no cap.
    public let maxSteps: Int
    /// 0 = no per-step log.
    public let logEvery: Int
    /// 0 = checkpoint only at the end.
    public let checkpointEvery: Int

    public init(epochs: Int, batch: Int, lr: Double, beta1: Double, beta2: Double, eps: Double, seed: Int, samples: Int, maxSteps: Int, logEvery: Int, checkpointEvery: Int) {
        self.epochs = epochs; self.batch = batch; self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.seed = seed; self.samples = samples; self.maxSteps = maxSteps; self.logEvery = logEvery; self.checkpointEvery = checkpointEvery
    }
}

/// Test-set evaluation.
public struct EvalConfig: Equatable, Sendable {
    /// 0 = never.
    public let every: Int
    public let batch: Int
    /// 0 = no importance-weighted NLL during training.
    public let iwSamples: Int
    public let auThreshold: Double

    public init(every: Int, batch: Int, iwSamples: Int, auThreshold: Double) {
        self.every = every; self.batch = batch; self.iwSamples = iwSamples; self.auThreshold = auThreshold
    }
}

/// The resolved training configuration: defaults, overlaid by a YAML file,
/// overlaid by `--set` overrides. Every stored value has its key's type and
/// satisfies its key's constraint; cross-key rules are checked by `validate()`.
public struct TrainConfig: Equatable, Sendable {
    private var values: [String: ConfigValue]

    private init(values: [String: ConfigValue]) { self.values = values }

    /// The embedded default (every key at its default) as YAML with a comment
    /// per key; parsing it gives `TrainConfig.defaults`.
    public static let embeddedDefaultYAML: String = defaults.render(
        header: "vaeas-dist training configuration: defaults. Any key may be left out.", comments: true)

    /// Every key at its default value.
    public static var defaults: TrainConfig {
        TrainConfig(values: Dictionary(uniqueKeysWithValues: KeyTable.all.map { ($0.key, $0.defaultValue) }))
    }

    /// All keys "section.key" in canonical order.
    public static var keys: [String] { KeyTable.all.map(\.key) }

    /// Parses YAML text over the defaults. `source` names the file in errors.
    /// Does not run the cross-key checks: overrides may still fix them; call `validate()`.
    public static func parse(yaml: String, source: String) throws -> TrainConfig {
        var config = TrainConfig.defaults
        try config.merge(yaml: yaml, source: source)
        return config
    }

    /// Loads a file over the defaults; nil loads the embedded default.
    public static func load(path: String?) throws -> TrainConfig {
        guard let path else { return try parse(yaml: embeddedDefaultYAML, source: "<embedded default>") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read config file" : "config file not found"
            throw ConfigError(key: nil, source: path, message: "\(reason) (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(key: nil, source: path, message: "config file is not valid UTF-8")
        }
        return try parse(yaml: text, source: path)
    }

    /// Applies one "section.key=value" override; the value is parsed as the key's type.
    /// Everything after the first '=' is the value, so string values may contain '='.
    public mutating func set(_ assignment: String) throws {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw ConfigError(key: nil, source: "--set",
                              message: "--set expects section.key=value, got '\(assignment)' (no '=')",
                              selfContained: true)
        }
        let key = assignment[..<eq].trimmingCharacters(in: .whitespaces)
        let text = String(assignment[assignment.index(after: eq)...])
        guard !key.isEmpty else {
            throw ConfigError(key: nil, source: "--set",
                              message: "--set expects section.key=value, got '\(assignment)' (empty key)",
                              selfContained: true)
        }
        let descriptor = try TrainConfig.descriptor(key, source: "--set", line: nil)
        values[key] = try descriptor.parse(RawScalar(text: text, origin: .commandLine), source: "--set", line: nil)
    }

    /// Sets a typed value; an `.int` is accepted for a float key. Checks type and range.
    public mutating func set(_ key: String, to value: ConfigValue) throws {
        let descriptor = try TrainConfig.descriptor(key, source: nil, line: nil)
        var value = value
        if descriptor.type == .float, case let .int(i) = value { value = .float(Double(i)) }
        if let problem = descriptor.violation(value) {
            throw ConfigError(key: key, source: nil, message: problem)
        }
        values[key] = value
    }

    /// Sets a choice key to one of its cases.
    public mutating func set<T: RawRepresentable>(_ key: String, choice: T) throws where T.RawValue == String {
        try set(key, to: .string(choice.rawValue))
    }

    /// The value of a "section.key".
    public func value(_ key: String) throws -> ConfigValue {
        _ = try TrainConfig.descriptor(key, source: nil, line: nil)
        return values[key]!
    }

    /// Cross-key checks, run once all overrides are applied.
    public func validate() throws {
        let o = objective
        // Only the vaeas objective uses the label softmax; for a plain VAE these keys are inert.
        if o.kind == .vaeas && o.softmax == .tree && o.miEstimator.needsAllProbabilities {
            throw ConfigError(
                key: "objective.softmax", source: nil,
                message: "objective.softmax=tree cannot be combined with objective.mi_estimator=entropy: "
                    + "the tree softmax does not give the label entropy; use objective.mi_estimator=ce or fano, "
                    + "or objective.softmax=full",
                selfContained: true)
        }
    }

    /// The resolved config as YAML: every key, canonical order, floats written
    /// so that `parse` gives back the same bits.
    public func yaml() -> String {
        render(header: "vaeas-dist resolved training configuration", comments: false)
    }

    public var data: DataConfig {
        DataConfig(name: str("data.name"), dir: str("data.dir"), binarize: choice("data.binarize"),
                   limit: int("data.limit"), testSplit: str("data.test_split"))
    }

    public var model: ModelConfig {
        ModelConfig(latent: int("model.latent"), hidden: int("model.hidden"), encLayers: int("model.enc_layers"),
                    decLayers: int("model.dec_layers"), clsLayers: int("model.cls_layers"),
                    activation: choice("model.activation"), initialization: choice("model.init"))
    }

    public var objective: ObjectiveConfig {
        ObjectiveConfig(kind: choice("objective.kind"), alpha: float("objective.alpha"), beta: float("objective.beta"),
                        labels: int("objective.labels"), labelAssignment: choice("objective.label_assignment"),
                        miEstimator: choice("objective.mi_estimator"), softmax: choice("objective.softmax"),
                        leafOrder: choice("objective.leaf_order"))
    }

    public var train: TrainingConfig {
        TrainingConfig(epochs: int("train.epochs"), batch: int("train.batch"), lr: float("train.lr"),
                       beta1: float("train.beta1"), beta2: float("train.beta2"), eps: float("train.eps"),
                       seed: int("train.seed"), samples: int("train.samples"), maxSteps: int("train.max_steps"),
                       logEvery: int("train.log_every"), checkpointEvery: int("train.checkpoint_every"))
    }

    public var eval: EvalConfig {
        EvalConfig(every: int("eval.every"), batch: int("eval.batch"), iwSamples: int("eval.iw_samples"),
                   auThreshold: float("eval.au_threshold"))
    }

    // The stored values always have the table's type, so these cannot fail for table keys.
    private func int(_ key: String) -> Int {
        guard case let .int(v)? = values[key] else { preconditionFailure("\(key) is not an int key") }
        return v
    }

    private func float(_ key: String) -> Double {
        guard case let .float(v)? = values[key] else { preconditionFailure("\(key) is not a float key") }
        return v
    }

    /// A choice key: its stored string is one of `T`'s raw values (the table's constraint says so).
    private func choice<T: RawRepresentable>(_ key: String) -> T where T.RawValue == String {
        guard let v = T(rawValue: str(key)) else { preconditionFailure("\(key) holds a value outside \(T.self)") }
        return v
    }

    private func str(_ key: String) -> String {
        guard case let .string(v)? = values[key] else { preconditionFailure("\(key) is not a string key") }
        return v
    }
}

// MARK: - YAML reading

extension TrainConfig {
    private mutating func merge(yaml: String, source: String) throws {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(key: nil, source: source, message: "YAML syntax error: \(error)")
        }
        // An empty (or all-comment) file means "all defaults".
        guard let root, !isNull(root) else { return }
        guard case let .mapping(sections) = root else {
            throw ConfigError(key: nil, source: source, line: root.mark?.line,
                              message: "expected a mapping of sections (data, model, ...), got \(kind(root))")
        }
        var seenSections: [String: Int] = [:]
        for (sectionNode, body) in sections {
            let line = sectionNode.mark?.line
            let section = try keyText(sectionNode, source: source)
            try checkDuplicate(section, line: line, seen: &seenSections, source: source)
            guard KeyTable.sections.contains(section) else {
                throw TrainConfig.unknownSection(section, source: source, line: line)
            }
            // "model:" with everything commented out is an empty section, not an error.
            if isNull(body) { continue }
            guard case let .mapping(entries) = body else {
                throw ConfigError(key: section, source: source, line: body.mark?.line ?? line,
                                  message: "expected a mapping of keys under section '\(section)', got \(kind(body))")
            }
            var seenKeys: [String: Int] = [:]
            for (keyNode, valueNode) in entries {
                let keyLine = keyNode.mark?.line
                let name = try keyText(keyNode, source: source)
                let key = "\(section).\(name)"
                try checkDuplicate(key, line: keyLine, seen: &seenKeys, source: source)
                let descriptor = try TrainConfig.descriptor(key, source: source, line: keyLine)
                let valueLine = valueNode.mark?.line ?? keyLine
                guard case let .scalar(scalar) = valueNode else {
                    throw ConfigError(key: key, source: source, line: valueLine,
                                      message: "expected \(descriptor.expectation), got \(kind(valueNode))")
                }
                let raw = RawScalar(text: scalar.string,
                                    origin: scalar.style == .plain || scalar.style == .any
                                        ? .plainYAML(Tag.Name(rawValue: valueNode.tag.description)) : .quotedYAML)
                values[key] = try descriptor.parse(raw, source: source, line: valueLine)
            }
        }
    }

    private func checkDuplicate(_ key: String, line: Int?, seen: inout [String: Int], source: String) throws {
        if let first = seen[key] {
            throw ConfigError(key: key, source: source, line: line,
                              message: "given twice (first on line \(first)); keep one")
        }
        seen[key] = line ?? 0
    }

    private func keyText(_ node: Node, source: String) throws -> String {
        guard case let .scalar(s) = node else {
            throw ConfigError(key: nil, source: source, line: node.mark?.line,
                              message: "expected a plain name as mapping key, got \(kind(node))")
        }
        return s.string
    }

    private func isNull(_ node: Node) -> Bool {
        if case let .scalar(s) = node, s.style == .plain || s.style == .any { return Tag.Name(rawValue: node.tag.description) == .null }
        return false
    }

    private func kind(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case let .scalar(s): return "the scalar '\(s.string)'"
        }
    }

    private static func descriptor(_ key: String, source: String?, line: Int?) throws -> KeyDescriptor {
        if let d = KeyTable.byKey[key] { return d }
        throw unknownKey(key, source: source, line: line)
    }
}

// MARK: - Scalars

/// A scalar before it is given its key's type. YAML scalars carry Yams' tag
/// resolution so that `yes`, `~` etc. can be reported as what YAML thinks they are.
struct RawScalar {
    enum Origin { case commandLine, quotedYAML, plainYAML(Tag.Name) }
    let text: String
    let origin: Origin
}

extension KeyDescriptor {
    func parse(_ raw: RawScalar, source: String, line: Int?) throws -> ConfigValue {
        func fail(_ message: String) -> ConfigError {
            ConfigError(key: key, source: source, line: line, message: message)
        }
        let text = raw.text
        let expected = "expected \(expectation)"

        if case let .plainYAML(tag) = raw.origin, tag == .null {
            let hint = type == .string ? " (write \"\" for an empty string)" : ""
            throw fail("\(expected), got an empty value\(hint)")
        }
        if case let .plainYAML(tag) = raw.origin, tag == .bool {
            let hint = type == .string ? " (quote it if you mean the string)" : ""
            throw fail("\(expected), got '\(text)' (a boolean)\(hint)")
        }
        if case .quotedYAML = raw.origin, type != .string {
            throw fail("\(expected), got the quoted string '\(text)' (write numbers without quotes)")
        }

        let value: ConfigValue
        switch type {
        case .string:
            value = .string(text)
        case .int:
            let t = text.trimmingCharacters(in: .whitespaces)
            if isIntegerLiteral(t) {
                guard let v = Int(t.hasPrefix("+") ? String(t.dropFirst()) : t) else {
                    throw fail("\(expected), got \(t) (out of range)")
                }
                value = .int(v)
            } else if isFloatLiteral(t), let d = Double(t) {
                let hint = d.isFinite && d == d.rounded() && abs(d) < 1e18
                    ? "; write it as \(Int(d))" : ""
                throw fail("\(expected), got '\(t)' (a float, not an integer\(hint))")
            } else {
                throw fail("\(expected), got '\(t)'")
            }
        case .float:
            let t = text.trimmingCharacters(in: .whitespaces)
            if isNonFiniteLiteral(t) {
                throw fail("\(expected), got '\(t)' (NaN and infinity are not allowed)")
            }
            guard isIntegerLiteral(t) || isFloatLiteral(t), let d = Double(t) else {
                throw fail("\(expected), got '\(t)'")
            }
            guard d.isFinite else { throw fail("\(expected), got '\(t)' (overflows to infinity)") }
            value = .float(d)
        }
        if let problem = violation(value) { throw fail(problem) }
        return value
    }
}

private func isDigits<S: StringProtocol>(_ s: S) -> Bool {
    !s.isEmpty && s.allSatisfy { $0.isASCII && $0.isNumber }
}

private func dropSign(_ s: String) -> Substring {
    s.hasPrefix("+") || s.hasPrefix("-") ? s.dropFirst() : Substring(s)
}

/// `[-+]?[0-9]+`; no hex, octal or underscores, so a value means one thing everywhere.
func isIntegerLiteral(_ s: String) -> Bool { isDigits(dropSign(s)) }

/// `[-+]?(digits[.digits?] | .digits)([eE][-+]?digits)?` with a '.' or exponent.
public func isFloatLiteral(_ s: String) -> Bool {
    var body = dropSign(s)
    if let e = body.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        var exp = body[body.index(after: e)...]
        if exp.hasPrefix("+") || exp.hasPrefix("-") { exp = exp.dropFirst() }
        guard isDigits(exp) else { return false }
        body = body[..<e]
    } else if !body.contains(".") {
        return false
    }
    let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    if parts.count == 1 { return isDigits(parts[0]) }
    let (whole, frac) = (parts[0], parts[1])
    return (isDigits(whole) && (frac.isEmpty || isDigits(frac))) || (whole.isEmpty && isDigits(frac))
}

func isNonFiniteLiteral(_ s: String) -> Bool {
    let body = dropSign(s.lowercased())
    return [".inf", "inf", "infinity", ".nan", "nan"].contains(String(body))
}

// MARK: - Unknown keys

extension TrainConfig {
    static func unknownKey(_ key: String, source: String?, line: Int?) -> ConfigError {
        var text = "unknown config key '\(key)'"
        switch source {
        case nil: break
        case "--set"?: text += " (from --set)"
        case let file?: text += " in \(file)" + (line.map { ", line \($0)" } ?? "")
        }
        let parts = key.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = parts.count == 2 ? parts[1] : parts[0]
        let section = parts.count == 2 ? parts[0] : nil

        if let suggestion = closest(key, among: KeyTable.all.map(\.key)) {
            text += "; did you mean '\(suggestion)'?"
        } else if let sameName = KeyTable.all.first(where: { $0.name == name }) {
            // Right key, wrong section (or section missing, e.g. --set latent=8).
            text += "; did you mean '\(sameName.key)'?"
        } else if let section, KeyTable.sections.contains(section) {
            text += "; keys in section '\(section)': "
                + KeyTable.keys(in: section).map(\.name).joined(separator: ", ")
        } else {
            text += "; keys are written section.key with sections "
                + KeyTable.sections.joined(separator: ", ")
        }
        return ConfigError(key: key, source: source, line: line, message: text, selfContained: true)
    }

    static func unknownSection(_ section: String, source: String, line: Int?) -> ConfigError {
        var text = "unknown config section '\(section)' in \(source)" + (line.map { ", line \($0)" } ?? "")
        if KeyTable.byKey[section] != nil {
            let parts = section.split(separator: ".", maxSplits: 1)
            text += "; write it nested: '\(parts[0]):' with '\(parts[1]):' indented below it"
        } else if let suggestion = closest(section, among: KeyTable.sections) {
            text += "; did you mean '\(suggestion)'?"
        } else {
            text += "; sections are " + KeyTable.sections.joined(separator: ", ")
        }
        return ConfigError(key: section, source: source, line: line, message: text, selfContained: true)
    }

    /// The candidate nearest by edit distance, if near enough to be a typo.
    private static func closest(_ word: String, among candidates: [String]) -> String? {
        let limit = max(1, min(3, word.count / 4))
        let scored = candidates.map { ($0, editDistance(word, $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= limit else { return nil }
        return best.0
    }
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions,
/// which are the commonest typo ("latnet").
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
            }
        }
    }
    return d[a.count][b.count]
}

// MARK: - YAML writing

extension TrainConfig {
    func render(header: String, comments: Bool) -> String {
        var out = "# \(header)\n"
        for section in KeyTable.sections {
            out += "\n\(section):\n"
            for d in KeyTable.keys(in: section) {
                // The constraint text comes from the table so the comment cannot drift from the check.
                if comments { out += "  # \(d.doc) Expected: \(d.expectation).\n" }
                out += "  \(d.name): \(yamlScalar(values[d.key]!))\n"
            }
        }
        return out
    }

    private func yamlScalar(_ value: ConfigValue) -> String {
        switch value {
        case let .int(v): return String(v)
        case let .float(v): return formatFloat(v)
        case let .string(s): return doubleQuoted(s)
        }
    }

    /// Always quote strings: a dataset dir like "yes" or "1e3" must come back as a string.
    private func doubleQuoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F || (0x80...0x9F).contains(u.value)
                    || u.value == 0x2028 || u.value == 0x2029 || u.value == 0xFEFF {
                    out += String(format: "\\u%04X", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
