import Foundation
import Yams

// MARK: - YAML reading

extension TrainConfig {
    mutating func merge(yaml: String, source: String) throws {
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

    static func descriptor(_ key: String, source: String?, line: Int?) throws -> KeyDescriptor {
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
