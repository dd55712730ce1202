extension String {
    /// The string as one POSIX shell word: as is when it has only characters
    /// no shell treats specially, else in single quotes (a ' inside written
    /// '\''), so a printed command can be pasted back.
    public var shellQuoted: String {
        let plain = !isEmpty && unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "_-./:=@%+,".unicodeScalars.contains($0)
        }
        return plain ? self : "'" + replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
