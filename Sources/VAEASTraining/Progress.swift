import VAEASConfig
import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import Foundation

/// What a person watching rank 0 sees: on a terminal, an in-epoch line
/// redrawn with rate and ETA; always, one line per epoch on stdout.
public final class Progress {
    let interactive: Bool
    var lastDraw = Date.distantPast

    public init(interactive: Bool = isatty(STDERR_FILENO) != 0) { self.interactive = interactive }

    func step(epoch: Int, step: Int, of steps: Int, samples: Int, loss: Double, since start: Date) {
        guard interactive else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.25 || step == steps else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let rate = Double(samples) / max(elapsed, 1e-9)
        let eta = elapsed / Double(step) * Double(steps - step)
        let width = 24
        let filled = width * step / steps
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "epoch %d [%@] %d/%d  loss %.3f  %.0f samples/s  ETA %@",
                          epoch, bar, step, steps, loss, rate, Progress.clock(eta))
        FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
    }

    func epochDone(_ r: JSONRecord, epochs: Int) {
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        var d: [String: JSONRecord.Value] = [:]
        for (k, v) in r.fields { d[k] = v }
        func num(_ k: String) -> Double? {
            switch d[k] { case .double(let x): return x; case .int(let i): return Double(i); default: return nil }
        }
        var s = String(format: "epoch %d/%d  loss %.3f  recon %.3f  kl %.3f", num("epoch").map(Int.init) ?? 0, epochs,
                       num("loss") ?? .nan, num("recon") ?? .nan, num("kl") ?? .nan)
        if let mi = num("mi"), let md = num("md"), let sc = num("sc") {
            s += String(format: "  mi %.3f  md %.3f  sc %.3f", mi, md, sc)
        }
        if let e = num("test_elbo") { s += String(format: "  test_elbo %.3f", e) }
        s += String(format: "  %.0f samples/s  %.1fs", num("samples_per_s") ?? 0, num("seconds") ?? 0)
        print(s)
        fflush(stdout)
    }

    public static func clock(_ t: Double) -> String {
        guard t.isFinite else { return "--:--" }
        let s = Int(t.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
    }
}
