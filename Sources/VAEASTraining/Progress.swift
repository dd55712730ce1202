import VAEASConfig
import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import Foundation

/// What a person watching rank 0 sees: one line per epoch on stdout, always,
/// and within an epoch either a line redrawn in place (on a terminal) or, in a
/// log file or pipe (SLURM, `| tee`, mpirun's output redirected), a plain line
/// every `VAEAS_PROGRESS_SECONDS` seconds (default 30). Each carries the rate and
/// an ETA for the whole run (all epochs, or `train.max_steps` if sooner).
public final class Progress {
    /// How in-epoch progress is shown.
    public enum Mode: Equatable, Sendable {
        /// A line redrawn in place with `\r`, on stdout or stderr.
        case live(Channel)
        /// A plain line on stdout every `seconds`.
        case plain(seconds: Double)
        /// Epoch lines only.
        case off
    }

    public enum Channel: Int32, Sendable { case stdout = 1, stderr = 2 }

    /// The default interval of plain lines, in seconds.
    public static let defaultInterval = 30.0

    public let mode: Mode
    /// Epochs of the whole run, for the ETA; when nil, the `epochs` of the
    /// first `epochDone` is used from then on (until then the ETA covers the epoch).
    public var totalEpochs: Int?
    /// `train.max_steps` (0: no cap): the run ends there if sooner.
    public var maxSteps: Int
    /// Where lines go (tests replace it).
    public var write: (String, Channel) -> Void = { text, stream in
        fflush(stdout)
        FileHandle(fileDescriptor: stream.rawValue, closeOnDealloc: false).write(Data(text.utf8))
    }
    /// The clock (tests replace it).
    public var now: () -> Date = Date.init

    private var lastDraw = Date.distantPast
    private var anchor: (time: Date, step: Int)?
    private var stepsPerEpoch: Int?
    private var liveLineShown = false

    /// - Parameters:
    ///   - mode: default `Progress.mode(...)` for this process's stdout and stderr.
    ///   - totalEpochs: the run's `train.epochs`, for a whole-run ETA from the first epoch on.
    ///   - maxSteps: the run's `train.max_steps` (0: none).
    public init(mode: Mode = Progress.defaultMode(), totalEpochs: Int? = nil, maxSteps: Int = 0) {
        self.mode = mode
        self.totalEpochs = totalEpochs
        self.maxSteps = maxSteps
    }

    /// The mode for this process: `Progress.mode` from its streams and environment.
    public static func defaultMode() -> Mode {
        let env = ProcessInfo.processInfo.environment
        let underMPIRun = LauncherEnvironment(env).isOpenMPIRun
        return mode(stdoutIsTerminal: isatty(STDOUT_FILENO) != 0, stderrIsTerminal: isatty(STDERR_FILENO) != 0,
                    launcherStdoutIsTerminal: underMPIRun ? parentStdoutIsTerminal() : nil, environment: env)
    }

    /// The decision, as a pure function:
    /// - `VAEAS_PROGRESS=live|plain|off` forces a mode;
    /// - under mpirun (`launcherStdoutIsTerminal` non-nil) a rank's stdout is
    ///   mpirun's pseudo-terminal whatever mpirun's own output is, so the line
    ///   is redrawn only when mpirun's stdout is a terminal, else plain lines;
    /// - else a line redrawn on stdout if it is a terminal, else on stderr if
    ///   that is one (`train > log` at a terminal), else plain lines on stdout.
    /// Plain lines come every `VAEAS_PROGRESS_SECONDS` (default 30; fractions allowed).
    public static func mode(stdoutIsTerminal: Bool, stderrIsTerminal: Bool, launcherStdoutIsTerminal: Bool?,
                            environment: [String: String]) -> Mode {
        let seconds = environment["VAEAS_PROGRESS_SECONDS"].flatMap { Double($0) }.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
            ?? defaultInterval
        let live: Mode = stdoutIsTerminal ? .live(.stdout) : stderrIsTerminal ? .live(.stderr) : .plain(seconds: seconds)
        switch environment["VAEAS_PROGRESS"]?.lowercased() {
        case "off", "none", "0": return .off
        case "plain": return .plain(seconds: seconds)
        case "live": return stdoutIsTerminal || stderrIsTerminal ? live : .live(.stdout)
        default: break
        }
        if let launcher = launcherStdoutIsTerminal {
            return launcher && stdoutIsTerminal ? .live(.stdout) : .plain(seconds: seconds)
        }
        return live
    }

    /// Whether the parent process's stdout (mpirun's, for a rank it started) is a terminal.
    static func parentStdoutIsTerminal() -> Bool {
        let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(getppid())/fd/1")) ?? ""
        return link.hasPrefix("/dev/pts/") || link.hasPrefix("/dev/tty") || link == "/dev/console"
    }

    /// After step `step` of `steps` of `epoch` (1-based); `samples` and `loss`
    /// so far in this epoch, which started (or resumed) at `start`.
    public func step(epoch: Int, step: Int, of steps: Int, samples: Int, loss: Double, since start: Date) {
        if case .off = mode { return }
        let t = now()
        let global = (epoch - 1) * steps + step
        if anchor == nil { anchor = (start, global - 1) }
        stepsPerEpoch = steps
        switch mode {
        case .live(let stream):
            guard t.timeIntervalSince(lastDraw) > 0.25 || step == steps else { return }
            lastDraw = t
            let width = 24
            let filled = width * step / max(steps, 1)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let line = String(format: "epoch %d%@ [%@] %d/%d  loss %.3f  %.0f samples/s  %@", epoch, ofEpochs, bar, step, steps,
                              loss, rate(samples, start, t), eta(global: global, step: step, of: steps, at: t))
            write("\r" + line + "\u{1B}[K", stream)
            liveLineShown = true
        case .plain(let seconds):
            if lastDraw == .distantPast { lastDraw = anchor!.time }
            guard step < steps, t.timeIntervalSince(lastDraw) >= seconds else { return }
            lastDraw = t
            let line = String(format: "progress: epoch %d%@ step %d/%d (%.0f%%)  loss %.3f  %.0f samples/s  elapsed %@  %@",
                              epoch, ofEpochs, step, steps, 100 * Double(step) / Double(max(steps, 1)), loss,
                              rate(samples, start, t), Progress.clock(t.timeIntervalSince(anchor!.time)),
                              eta(global: global, step: step, of: steps, at: t))
            write(line + "\n", .stdout)
        case .off:
            return
        }
    }

    /// The epoch's line (always, on stdout), with the ETA of the rest of the run.
    public func epochDone(_ r: JSONRecord, epochs: Int) {
        if totalEpochs == nil { totalEpochs = epochs }
        if case .live(let stream) = mode, liveLineShown {
            write("\r\u{1B}[K", stream)
            liveLineShown = false
        }
        // The epoch line reports progress too: the next plain line comes an interval after it.
        if case .plain = mode, anchor != nil { lastDraw = now() }
        var d: [String: JSONRecord.Value] = [:]
        for (k, v) in r.fields { d[k] = v }
        func num(_ k: String) -> Double? {
            switch d[k] { case .double(let x): return x; case .int(let i): return Double(i); default: return nil }
        }
        let epoch = num("epoch").map(Int.init) ?? 0
        var s = String(format: "epoch %d/%d  loss %.3f  recon %.3f  kl %.3f", epoch, epochs,
                       num("loss") ?? .nan, num("recon") ?? .nan, num("kl") ?? .nan)
        if let mi = num("mi"), let md = num("md"), let sc = num("sc") {
            s += String(format: "  mi %.3f  md %.3f  sc %.3f", mi, md, sc)
        }
        if let e = num("test_elbo") { s += String(format: "  test_elbo %.3f", e) }
        s += String(format: "  %.0f samples/s  %.1fs", num("samples_per_s") ?? 0, num("seconds") ?? 0)
        if epoch < epochs, let steps = stepsPerEpoch, let anchor {
            // Measured after the epoch's evaluation and checkpoint, so the rate includes them.
            let global = epoch * steps
            s += "  " + eta(global: global, step: steps, of: steps, at: now(), anchor: anchor)
        }
        write(s + "\n", .stdout)
    }

    private var ofEpochs: String { totalEpochs.map { "/\($0)" } ?? "" }

    private func rate(_ samples: Int, _ start: Date, _ t: Date) -> Double {
        Double(samples) / max(t.timeIntervalSince(start), 1e-9)
    }

    /// "ETA 1:02:03" for the rest of the run at the mean time per step so far
    /// (evaluations and checkpoints included), or "epoch ETA 00:12" while the
    /// number of epochs is unknown.
    private func eta(global: Int, step: Int, of steps: Int, at t: Date, anchor given: (time: Date, step: Int)? = nil) -> String {
        guard let a = given ?? anchor, global > a.step else { return "ETA --:--" }
        let perStep = t.timeIntervalSince(a.time) / Double(global - a.step)
        guard let epochs = totalEpochs else {
            return "epoch ETA " + Progress.clock(perStep * Double(steps - step))
        }
        var end = epochs * steps
        if maxSteps > 0 { end = min(end, maxSteps) }
        return "ETA " + Progress.clock(perStep * Double(max(0, end - global)))
    }

    public static func clock(_ t: Double) -> String {
        guard t.isFinite else { return "--:--" }
        let s = Int(t.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
    }
}
