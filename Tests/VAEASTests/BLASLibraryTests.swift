import Foundation
import XCTest
import VAEAS

/// The run-time BLAS loader (`BLASLibrary`), the CPU facts behind the nominal peak (`CPUInfo`),
/// and the generic-kernel warning.
final class BLASLibraryTests: XCTestCase {
    /// /proc/cpuinfo's first block as the three kinds of machine this project has run on show it.
    static func cpuinfo(vendor: String, family: Int, model: Int, name: String, mhz: String, flags: String) -> String {
        """
        processor\t: 0
        vendor_id\t: \(vendor)
        cpu family\t: \(family)
        model\t\t: \(model)
        model name\t: \(name)
        cpu MHz\t\t: \(mhz)
        flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 \(flags)

        processor\t: 1
        vendor_id\t: SomethingElse
        flags\t\t: fpu

        """
    }

    static let emeraldRapids = CPUInfo.read(
        cpuinfo: cpuinfo(vendor: "GenuineIntel", family: 6, model: 207, name: "INTEL(R) XEON(R) PLATINUM 8581C CPU @ 2.10GHz",
                         mhz: "2100.000", flags: "avx fma avx2 avx512f avx512dq avx512_bf16 avx512_fp16"),
        maxFrequencyKHz: nil)
    static let zen4 = CPUInfo.read(
        cpuinfo: cpuinfo(vendor: "AuthenticAMD", family: 25, model: 17, name: "AMD EPYC 9R14", mhz: "2600.000",
                         flags: "avx fma avx2 avx512f avx512_bf16"),
        maxFrequencyKHz: nil)
    static let zen3 = CPUInfo.read(
        cpuinfo: cpuinfo(vendor: "AuthenticAMD", family: 25, model: 1, name: "AMD EPYC", mhz: "2445.406", flags: "avx fma avx2"),
        maxFrequencyKHz: nil)
    static let sseOnly = CPUInfo.read(
        cpuinfo: cpuinfo(vendor: "GenuineIntel", family: 6, model: 23, name: "Intel(R) Core(TM)2 Duo CPU", mhz: "2400", flags: ""),
        maxFrequencyKHz: nil)

    func testCPUInfoReadsTheFirstProcessorAndDerivesThePeak() {
        let e = Self.emeraldRapids
        XCTAssertEqual(e.vendor, "GenuineIntel")
        XCTAssertEqual(e.family, 6); XCTAssertEqual(e.model, 207)
        XCTAssertEqual(e.vectorExtensions, "AVX-512 (F, BF16, FP16), AVX2, FMA")
        XCTAssertEqual(e.flopsPerCycle.value, 64)
        // The model name's "@ 2.10GHz" beats cpu MHz (a VM reports the TSC there).
        XCTAssertEqual(e.clockGHz ?? 0, 2.1, accuracy: 1e-9)
        XCTAssertEqual(e.peakGFLOPSPerCore ?? 0, 134.4, accuracy: 1e-9)

        XCTAssertEqual(Self.zen4.flopsPerCycle.value, 32, "Zen 4 runs AVX-512 on 256-bit units")
        XCTAssertEqual(Self.zen3.flopsPerCycle.value, 32)
        XCTAssertEqual(Self.zen3.clockGHz ?? 0, 2.445406, accuracy: 1e-9)
        XCTAssertEqual(Self.zen3.clockSource, "/proc/cpuinfo cpu MHz")
        XCTAssertEqual(Self.sseOnly.flopsPerCycle.value, 8)
        XCTAssertEqual(Self.sseOnly.vectorExtensions, "SSE only")

        let boosted = CPUInfo.read(cpuinfo: Self.cpuinfo(vendor: "AuthenticAMD", family: 25, model: 1, name: "AMD EPYC 7763",
                                                          mhz: "2445", flags: "avx fma avx2"),
                                   maxFrequencyKHz: "3500000\n")
        XCTAssertEqual(boosted.clockGHz ?? 0, 3.5, accuracy: 1e-9)
        XCTAssertEqual(boosted.clockSource, "cpufreq cpuinfo_max_freq")

        let nothing = CPUInfo.read(cpuinfo: nil, maxFrequencyKHz: nil)
        XCTAssertNil(nothing.peakGFLOPSPerCore)
        XCTAssertTrue(nothing.peakText.contains("clock unknown"), nothing.peakText)
    }

    func testAGenericKernelOnAVXHardwareIsWarnedAbout() throws {
        // What issue #19 saw: Debian's 0.3.21 picks Prescott on Emerald Rapids.
        let w = try XCTUnwrap(BLASLibrary.genericKernelWarning(vendor: .openblas, version: "0.3.21", kernel: "Prescott",
                                                               path: "/usr/lib/libopenblas.so.0", selection: "openblas",
                                                               cpu: Self.emeraldRapids, environment: [:]))
        for part in ["OpenBLAS 0.3.21", "/usr/lib/libopenblas.so.0", "Prescott", "INTEL(R) XEON(R) PLATINUM 8581C", "AVX-512",
                     "VAEAS_BLAS=scipy-openblas"] {
            XCTAssertTrue(w.contains(part), "\(part) missing from: \(w)")
        }
        // A forcing OPENBLAS_CORETYPE is named, and kept: the fix is another library, not unsetting it.
        let forced = try XCTUnwrap(BLASLibrary.genericKernelWarning(vendor: .openblas, version: "0.3.21", kernel: "Nehalem",
                                                                    path: "p", selection: "openblas", cpu: Self.zen4,
                                                                    environment: ["OPENBLAS_CORETYPE": "Nehalem"]))
        XCTAssertTrue(forced.contains("OPENBLAS_CORETYPE=Nehalem is set"), forced)
        // Never suggest the library that is already running.
        let mkl = try XCTUnwrap(BLASLibrary.genericKernelWarning(vendor: .mkl, version: "2026.2", kernel: "SSE4.2",
                                                                 path: "p", selection: "mkl", cpu: Self.emeraldRapids, environment: [:]))
        XCTAssertTrue(mkl.contains("VAEAS_BLAS=scipy-openblas") && !mkl.contains("VAEAS_BLAS=mkl"), mkl)
        // MKL on AMD names no instruction set although its AVX2 sgemm runs: no warning.
        XCTAssertNil(BLASLibrary.genericKernelWarning(vendor: .mkl, version: "2026.2", kernel: "Intel(R) Architecture processors",
                                                      path: "p", selection: "mkl", cpu: Self.zen3, environment: [:]))
        XCTAssertNotNil(BLASLibrary.genericKernelWarning(vendor: .blis, version: "0.9.0", kernel: "generic", path: "p",
                                                         selection: "blis", cpu: Self.zen3, environment: [:]))

        // No warning for the right kernel, nor for a generic kernel on a CPU that has nothing better.
        for (vendor, kernel) in [(BLASLibrary.Vendor.openblas, "Haswell"), (.openblas, "SkylakeX"), (.openblas, "Zen"),
                                 (.openblas, "Cooperlake"), (.mkl, "AVX2"), (.mkl, "AVX-512"), (.blis, "zen3"), (.blis, "skx")] {
            XCTAssertNil(BLASLibrary.genericKernelWarning(vendor: vendor, version: "v", kernel: kernel, path: "p", selection: "x",
                                                          cpu: Self.emeraldRapids, environment: [:]), "\(vendor) \(kernel)")
        }
        XCTAssertNil(BLASLibrary.genericKernelWarning(vendor: .openblas, version: "0.3.21", kernel: "Core2", path: "p",
                                                      selection: "openblas", cpu: Self.sseOnly, environment: [:]))
    }

    func testOpeningLibrariesByNameAndPath() throws {
        XCTAssertThrowsError(try BLASLibrary.open("not-a-blas")) { e in
            XCTAssertTrue("\(e)".contains("VAEAS_BLAS=not-a-blas") && "\(e)".contains("scipy-openblas, openblas, mkl, blis"), "\(e)")
        }
        XCTAssertThrowsError(try BLASLibrary.open("/nonexistent/libopenblas.so")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent/libopenblas.so"), "\(e)")
        }
        // A shared library that is not a BLAS (zlib, which the project links anyway).
        XCTAssertThrowsError(try BLASLibrary.open("libz.so.1")) { e in
            XCTAssertTrue("\(e)".contains("no cblas_sgemm"), "\(e)")
        }
        XCTAssertThrowsError(try BLASLibrary.load(environment: ["VAEAS_BLAS": "nonsense"]))
        // numpy's wheel bundles a 64-bit-integer OpenBLAS (libscipy_openblas64_-*.so): refused by name.
        if let dir = Self.numpyLibs(),
           let lib = (try? FileManager.default.contentsOfDirectory(atPath: dir))?.first(where: { $0.hasPrefix("libscipy_openblas64_") }) {
            XCTAssertThrowsError(try BLASLibrary.open(dir + "/" + lib)) { e in
                XCTAssertTrue("\(e)".contains("ILP64"), "\(e)")
            }
        }
    }

    /// numpy.libs/ of the python3 on PATH (where numpy's wheel keeps its OpenBLAS), if there is one.
    static func numpyLibs() -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import numpy, os; print(os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), 'numpy.libs'))"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        p.waitUntilExit()
        let path = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return p.terminationStatus == 0 && !path.isEmpty ? path : nil
    }

    /// Both libraries scripts/setup.sh installs: found by name, versions and kernels read, threads
    /// settable, and a product through each equals the naive sum.
    func testTheInstalledLibrariesComputeTheSameProduct() throws {
        let m = 37, n = 29, k = 53
        let a = (0..<(m * k)).map { Float(($0 * 7) % 13) / 13 - 0.5 }
        let b = (0..<(k * n)).map { Float(($0 * 5) % 11) / 11 - 0.5 }
        var naive = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for l in 0..<k { naive[i * n + j] += Double(a[i * k + l]) * Double(b[l * n + j]) } } }
        for (name, version) in [("scipy-openblas", "0.3.34"), ("openblas", "0.3.")] {
            let lib = try BLASLibrary.open(name)
            XCTAssertEqual(lib.vendor, .openblas)
            XCTAssertTrue(lib.version.hasPrefix(version), "\(name): version \(lib.version)")
            XCTAssertFalse(lib.kernel.isEmpty || lib.kernel == "unknown", "\(name): kernel \(lib.kernel)")
            XCTAssertTrue(lib.path.hasPrefix("/"), lib.path)
            let saved = lib.threads
            lib.threads = 1
            XCTAssertEqual(lib.threads, 1)
            lib.threads = saved
            var c = [Float](repeating: 0, count: m * n)
            lib.multiply(m: m, n: n, k: k, a: a, b: b, into: &c)
            for i in 0..<(m * n) { XCTAssertEqual(Double(c[i]), naive[i], accuracy: 1e-5, "\(name) element \(i)") }
        }
    }
}
