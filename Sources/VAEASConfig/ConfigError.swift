import Foundation

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
