import Foundation
import VAEAS

/// What `vaeas-dist --version` prints and `run.jsonl` records.
enum BuildInfo {
    static let version = "0.4.0"

    /// The commit of the source tree the binary was built from: the
    /// `vaeas-dist.commit` file beside a binary copied out of `.build` by
    /// `scripts/freeze-binary.sh` (a copy cannot find its checkout), else the
    /// git repository holding the binary (`<repo>/.build/release/vaeas-dist`),
    /// read from `.git` directly (no git needed). nil outside a checkout.
    static let commit: String? = {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        if let text = try? String(contentsOfFile: exe + ".commit", encoding: .utf8) {
            let c = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if c.count == 40, c.allSatisfy(\.isHexDigit) { return c.lowercased() }
        }
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while dir.path != "/" {
            var git = dir.appendingPathComponent(".git").path
            // A worktree's or submodule's .git is a file naming the real git directory.
            if let link = try? String(contentsOfFile: git, encoding: .utf8), link.hasPrefix("gitdir: ") {
                let target = link.dropFirst(8).trimmingCharacters(in: .whitespacesAndNewlines)
                git = target.hasPrefix("/") ? target : dir.appendingPathComponent(target).path
            }
            if let head = try? String(contentsOfFile: git + "/HEAD", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) {
                guard head.hasPrefix("ref: ") else { return head }
                let ref = String(head.dropFirst(5))
                // A worktree keeps its HEAD; branches live in the common git directory.
                var refs = git
                if let common = try? String(contentsOfFile: git + "/commondir", encoding: .utf8) {
                    let c = common.trimmingCharacters(in: .whitespacesAndNewlines)
                    refs = c.hasPrefix("/") ? c : git + "/" + c
                }
                for base in [git, refs] {
                    if let c = try? String(contentsOfFile: base + "/" + ref, encoding: .utf8) { return c.trimmingCharacters(in: .whitespacesAndNewlines) }
                }
                let packed = (try? String(contentsOfFile: refs + "/packed-refs", encoding: .utf8)) ?? ""
                return packed.split(separator: "\n").first { $0.hasSuffix(" " + ref) }.map { String($0.prefix(40)) }
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()

    static var text: String {
        "vaeas-dist \(version)" + (commit.map { " (commit \($0.prefix(12)))" } ?? "") + "\n" + platformText
    }

    /// `--version`'s lines after the first: the BLAS library, its version, kernel and threads (as the
    /// thread plan sets them for a plain run), the CPU, and the BLAS variables the environment sets.
    static var platformText: String {
        let cpu = CPUInfo.current
        var lines: [String] = []
        switch Result(catching: { try BLAS.load() }) {
        case .success(let blas):
            Runtime.configureBLASThreads()
            lines.append("blas: \(blas.summary) (\(blas.path))")
            if let note = blas.note { lines.append("note: " + note) }
            if let warning = blas.genericKernelWarning(cpu: cpu) { lines.append(warning) }
            lines.append("numerics: float32, \(FloatingPointMode.summary)")
        case .failure(let error):
            lines.append("blas: none could be loaded: \(error)")
        }
        lines.append("cpu: \(cpu.description), \(cpu.vectorExtensions); nominal peak \(cpu.peakText)")
        let overrides = BLASLibrary.environmentOverrides()
        if !overrides.isEmpty { lines.append("environment: " + overrides.map { "\($0.0)=\($0.1)" }.joined(separator: " ")) }
        return lines.joined(separator: "\n")
    }
}
