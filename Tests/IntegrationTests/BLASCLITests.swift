import Foundation
import XCTest

/// What the binary says about its BLAS and numerics (`--version`, `bench`, `run.jsonl`), `VAEAS_BLAS` choosing
/// the library, and a bad choice ending the job with a clear error at any rank count.
/// OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE pass through as the machine sets them: never set here.
final class BLASCLITests: XCTestCase {
    static let quick = ["--set", "data.name=binarized-mnist", "--set", "data.limit=200", "--set", "model.latent=4",
                        "--set", "model.hidden=16", "--set", "train.batch=50", "--set", "train.epochs=1", "--set", "eval.every=0"]

    func testVersionNamesTheLibraryItsKernelAndTheCPU() throws {
        let r = try CLI.run(["--version"])
        XCTAssertEqual(r.status, 0, r.output)
        let blas = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("blas: ") }, r.output)
        // "blas: OpenBLAS 0.3.34.481.3, kernel Haswell, 1 thread (/…/libscipy_openblas.so)"
        XCTAssertTrue(blas.range(of: #"^blas: (OpenBLAS|MKL|BLIS) [0-9][^,]*, kernel [^,]+, [0-9]+ threads? \(/"#,
                                 options: .regularExpression) != nil, String(blas))
        XCTAssertTrue(r.stdout.contains("\ncpu: ") && r.stdout.contains("GFLOP/s per core"), r.output)
        // The BLAS is opened in the flush-to-zero mode (FloatingPointMode), under either library.
        XCTAssertTrue(r.stdout.contains("\nnumerics: float32, subnormals flushed to zero (FTZ, DAZ)\n"), r.output)

        let debian = try CLI.run(["--version"], environment: ["VAEAS_BLAS": "openblas"])
        XCTAssertTrue(debian.stdout.contains("blas: OpenBLAS 0.3."), debian.output)
        XCTAssertTrue(debian.stdout.contains("environment: VAEAS_BLAS=openblas"), debian.output)
        XCTAssertTrue(debian.stdout.contains("\nnumerics: float32, subnormals flushed to zero (FTZ, DAZ)\n"), debian.output)
    }

    func testAnUnknownLibraryEndsTheJobWithItsName() throws {
        let out = CLI.temporaryDirectory("blas-unknown")
        for ranks in [nil, 2] as [Int?] {
            let r = try CLI.run(["train", "--out", out, "--overwrite", "--data-dir", CLI.sharedData] + Self.quick, ranks: ranks,
                                timeout: 60, environment: ["VAEAS_BLAS": "/nonexistent/libblas-that-is-not-there.so"])
            XCTAssertEqual(r.status, 1, "ranks \(ranks ?? 1): \(r.output)")
            XCTAssertTrue(r.stderr.contains("/nonexistent/libblas-that-is-not-there.so"), r.output)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
        }
    }

    func testBenchAndRunRecordsCarryTheBLAS() throws {
        let gemm = try CLI.run(["bench", "gemm", "--json", "--threads", "1", "--steps", "1", "--warmup", "0",
                                "--set", "model.hidden=32", "--set", "model.dec_layers=1"])
        XCTAssertEqual(gemm.status, 0, gemm.output)
        let lines = gemm.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(lines.map { $0["products"] as? String }, ["vae-b128", "vae-b64", "output-v1000", "output-v50000"])
        for l in lines {
            XCTAssertNotNil(l["blas_library"] as? String); XCTAssertNotNil(l["blas_kernel"] as? String)
            XCTAssertNotNil(l["cpu_model"] as? String)
            XCTAssertGreaterThan((l["gflops"] as? Double) ?? 0, 0)
            XCTAssertGreaterThan((l["fraction_of_peak"] as? Double) ?? 0, 0, "needs a clock from /proc/cpuinfo")
        }

        let out = CLI.temporaryDirectory("blas-run")
        let r = try CLI.run(["train", "--out", out, "--overwrite", "--data-dir", CLI.sharedData, "--set", "train.max_steps=2"] + Self.quick,
                            ranks: 2)
        XCTAssertEqual(r.status, 0, r.output)
        let start = try XCTUnwrap(CLI.jsonLines(out + "/run.jsonl").first)
        XCTAssertTrue(((start["blas"] as? String) ?? "").contains(", kernel "), "\(start)")
        XCTAssertEqual(((start["blas_kernel_per_rank"] as? String) ?? "").split(separator: ",").count, 2, "\(start)")
        XCTAssertNotNil(start["cpu_model"] as? String)
        XCTAssertEqual(start["subnormals"] as? String, "subnormals flushed to zero (FTZ, DAZ)", "\(start)")
        try? FileManager.default.removeItem(atPath: out)
    }
}
