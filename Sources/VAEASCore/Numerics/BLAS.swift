import Foundation
import VAEASConfig

/// Row-major matrix products through the CBLAS library that `BLASLibrary`
/// opens at start-up (scipy-openblas by default; `VAEAS_BLAS` selects another).
///
/// Every product in the model goes through `gemm`, so a benchmark can replay
/// the same shapes against the raw library (`Benchmark.sgemmReference`).
public enum BLAS {
    // CBLAS enum values (cblas.h): the same in OpenBLAS, MKL and BLIS.
    static let rowMajor: Int32 = 101, noTrans: Int32 = 111, trans: Int32 = 112

    /// Opened once, after the loading thread flushes subnormals to zero, so that the library's worker
    /// threads (created when it is opened) start in the same mode (`FloatingPointMode`).
    private static let loaded: Result<BLASLibrary, Error> = Result {
        FloatingPointMode.flushDenormalsInThisThread()
        return try BLASLibrary.load()
    }

    /// The library, or the reason none could be opened (`Runtime` reports it as a clean error).
    public static func load() throws -> BLASLibrary { try loaded.get() }

    /// The library in use. A process that cannot open any BLAS ends here with the reason
    /// (the CLI checks `load()` first and exits cleanly).
    public static var library: BLASLibrary {
        switch loaded {
        case .success(let l): return l
        case .failure(let e):
            FileHandle.standardError.write(Data("error: \(e)\n".utf8))
            exit(1)
        }
    }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, all row-major.
    /// `op(A)` is m×k (A is k×m when `transA`), `op(B)` is k×n (B is n×k when `transB`).
    @inline(__always)
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        library.sgemm(rowMajor, transA ? trans : noTrans, transB ? trans : noTrans,
                      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The same in Double (for estimators whose terms cancel, like log q(z|x_k)).
    @inline(__always)
    public static func dgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double = 1, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        library.dgemm(rowMajor, transA ? trans : noTrans, transB ? trans : noTrans,
                      Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Threads the BLAS library may use in this process. With P ranks on C cores the
    /// ranks already fill the cores; more BLAS threads would oversubscribe them.
    public static var threads: Int {
        get { library.threads }
        set { library.threads = newValue }
    }
}
