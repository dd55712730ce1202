import CKernels

/// Subnormal floats are flushed to zero in every thread that computes (flush-to-zero and
/// denormals-are-zero; `ckernels_fpmode.h` says why: on Intel cores a sharp softmax's
/// underflowing probabilities made a VAE-AS run 6× slower).
///
/// The mode belongs to a thread and a new thread starts with its creator's, so `BLAS` sets it
/// before opening the library (whose worker threads then inherit it), and `Parallel.chunks`
/// sets it in each of its workers, which libdispatch may have started earlier.
public enum FloatingPointMode {
    /// Flushes subnormals to zero in the calling thread; false where the CPU has no such mode.
    @discardableResult
    public static func flushDenormalsInThisThread() -> Bool { ck_set_flush_denormals(1) == 0 }

    /// Whether the calling thread flushes subnormals to zero.
    public static var flushesDenormalsInThisThread: Bool { ck_flush_denormals_enabled() != 0 }

    /// How `--version` and run.jsonl describe the mode of the calling thread.
    public static var summary: String {
        flushesDenormalsInThisThread ? "subnormals flushed to zero (\(mechanism))" : "subnormals kept (IEEE gradual underflow)"
    }

    /// The control bits `ck_set_flush_denormals` sets on this architecture.
    #if arch(arm64)
    private static let mechanism = "FPCR.FZ"
    #else
    private static let mechanism = "FTZ, DAZ"
    #endif
}
