import VAEASConfig
import Dispatch

/// Splits the passes between the products (the elementwise kernels of the
/// layers and the loss, Adam, the finite check) across the cores this rank
/// owns: the same cores the BLAS uses for the products (`BLAS.threads`),
/// idle outside them.
public enum Parallel {
    /// Calls `body` on up to `parts` contiguous ranges of 0..<count (multiples
    /// of 8 long, but the last), concurrently when there are several;
    /// `grain` is the least work worth a thread.
    public static func chunks(_ count: Int, parts: Int = BLAS.threads, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let p = max(1, min(parts, count / max(grain, 1)))
        if p == 1 { body(0..<count); return }
        let size = ((count + p - 1) / p + 7) & ~7
        DispatchQueue.concurrentPerform(iterations: p) { k in
            FloatingPointMode.flushDenormalsInThisThread()  // a libdispatch worker may predate the mode
            let lo = min(k * size, count), hi = min(lo + size, count)
            if lo < hi { body(lo..<hi) }
        }
    }
}
