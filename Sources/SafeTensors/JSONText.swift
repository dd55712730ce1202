import Foundation

/// Hand-written JSON output, so that keys keep insertion order.
public enum JSONText {
    /// `s` as a JSON string literal (RFC 8259 escapes).
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Top-level object keys in document order. JSONSerialization (used for
    /// the values) returns an unordered dictionary, so order comes from here.
    /// Assumes `bytes` is already known to be a valid JSON object.
    static func topLevelKeys(_ bytes: ArraySlice<UInt8>) -> [String] {
        var keys: [String] = []
        var depth = 0
        var i = bytes.startIndex
        var expectKey = false
        while i < bytes.endIndex {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth == 1 { expectKey = true }
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                i += 1
            case UInt8(ascii: ","):
                if depth == 1 { expectKey = true }
                i += 1
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while i < bytes.endIndex && bytes[i] != UInt8(ascii: "\"") {
                    i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
                }
                i += 1
                if depth == 1 && expectKey {
                    keys.append(decodeString(bytes[start..<min(i, bytes.endIndex)]))
                    expectKey = false
                }
            default:
                i += 1
            }
        }
        return keys
    }

    private static func decodeString(_ literal: ArraySlice<UInt8>) -> String {
        let inner = literal.dropFirst().dropLast()
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        // Escapes (\uXXXX, surrogate pairs) are rare in tensor names; let
        // Foundation decode them rather than duplicating its logic.
        let decoded = try? JSONSerialization.jsonObject(with: Data(literal),
                                                        options: .fragmentsAllowed) as? String
        return decoded ?? String(decoding: inner, as: UTF8.self)
    }
}
