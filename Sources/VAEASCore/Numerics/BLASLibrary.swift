import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The BLAS library behind `BLAS`, opened at run time (dlopen) rather than
/// linked, as numpy's threadpoolctl and Julia's libblastrampoline do: one
/// binary runs on whichever library a machine or a cluster module provides,
/// and the choice is an environment variable, not a rebuild.
///
/// Which library (`VAEAS_BLAS`; docs/PERFORMANCE.md "Which BLAS" says why the default won):
/// - unset: `scipy-openblas`, then Debian's `openblas` if the first is not on the loader's path
///   (with a note saying so);
/// - `scipy-openblas`: OpenBLAS 0.3.34 as numpy and scipy ship it (PyPI `scipy-openblas32`,
///   `libscipy_openblas.so`, symbols prefixed `scipy_`), installed by `scripts/setup.sh`;
/// - `openblas`: Debian's `libopenblas.so.0` (0.3.21 on bookworm);
/// - `mkl`: oneMKL's single dynamic library `libmkl_rt.so.3` (PyPI `mkl`; `.so.2` before 2025);
/// - `blis`: `libblis.so.4` (Debian `libblis4-pthread`);
/// - a path or a file name (`/opt/openblas/lib/libopenblas.so`, `libopenblas64_.so.0`): that file,
///   its kind recognised by the symbols it exports.
/// Names are looked up as the dynamic loader does (LD_LIBRARY_PATH, which `module load` sets on
/// clusters, then /etc/ld.so.conf.d, which `scripts/setup.sh` fills).
public final class BLASLibrary: @unchecked Sendable {
    public enum Vendor: String, Sendable { case openblas = "OpenBLAS", mkl = "MKL", blis = "BLIS" }

    /// A library the loader knows by a short name.
    public struct Known: Sendable {
        public let name: String
        public let files: [String]
        public let what: String
    }
    public static let known: [Known] = [
        Known(name: "scipy-openblas", files: ["libscipy_openblas.so"], what: "OpenBLAS as numpy/scipy ship it (PyPI scipy-openblas32)"),
        Known(name: "openblas", files: ["libopenblas.so.0", "libopenblas.so"], what: "the system's OpenBLAS (Debian libopenblas0)"),
        Known(name: "mkl", files: ["libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so"], what: "Intel oneMKL (PyPI mkl)"),
        Known(name: "blis", files: ["libblis.so.4", "libblis.so"], what: "BLIS (Debian libblis4-pthread)"),
    ]

    typealias SGEMM = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
                                      UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias DGEMM = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Double, UnsafePointer<Double>?, Int32,
                                      UnsafePointer<Double>?, Int32, Double, UnsafeMutablePointer<Double>?, Int32) -> Void

    public let vendor: Vendor
    /// The short name it was selected by, or the path given.
    public let selection: String
    /// The file the loader opened (resolved through symlinks where possible).
    public let path: String
    /// e.g. "0.3.34.481.3" (OpenBLAS), "2026.2" (MKL), "0.9.0" (BLIS).
    public let version: String
    /// The kernel set the library runs on this CPU: OpenBLAS's core name ("Haswell", "SkylakeX",
    /// "Prescott"), MKL's code path ("AVX2"), BLIS's sub-configuration ("zen3").
    public let kernel: String
    /// What the library reports of its own build (OpenBLAS's config string), for the records.
    public let buildConfig: String
    /// Why this library and not the default, when the default was not found (printed once by rank 0).
    public internal(set) var note: String?

    let sgemm: SGEMM
    let dgemm: DGEMM
    private let getThreads: () -> Int
    private let setThreads: (Int) -> Void

    public var threads: Int {
        get { max(1, getThreads()) }
        set { setThreads(max(1, newValue)) }
    }

    /// C[m×n] = A[m×k] · B[k×n], row-major, through this library (not `BLAS.library`): for checks
    /// that compare libraries in one process.
    public func multiply(m: Int, n: Int, k: Int, a: [Float], b: [Float], into c: inout [Float]) {
        precondition(a.count >= m * k && b.count >= k * n && c.count >= m * n)
        sgemm(BLAS.rowMajor, BLAS.noTrans, BLAS.noTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
    }

    /// "OpenBLAS 0.3.34.481.3, kernel Haswell, 1 thread".
    public var summary: String {
        "\(vendor.rawValue) \(version), kernel \(kernel), \(threads) thread\(threads == 1 ? "" : "s")"
    }

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Opens the library that `VAEAS_BLAS` names (see the type's comment).
    public static func load(environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> BLASLibrary {
        if let request = env["VAEAS_BLAS"]?.trimmingCharacters(in: .whitespaces), !request.isEmpty {
            return try open(request)
        }
        do {
            return try open("scipy-openblas")
        } catch let first as LoadError {
            guard let fallback = try? open("openblas") else {
                throw LoadError(description: "\(first.description); Debian's OpenBLAS (libopenblas.so.0) is not there either. "
                                + "Run scripts/setup.sh, or set VAEAS_BLAS to a BLAS library's path")
            }
            fallback.note = "scipy-openblas (libscipy_openblas.so) is not on the loader's path, so the system's OpenBLAS runs: "
                + "\(fallback.path). scripts/setup.sh installs scipy-openblas; VAEAS_BLAS=openblas chooses this one without this note"
            return fallback
        }
    }

    /// One library by short name or path.
    public static func open(_ request: String) throws -> BLASLibrary {
        let files: [String]
        if let k = known.first(where: { $0.name == request }) {
            files = k.files
        } else if request.contains("/") || request.contains(".so") {
            files = [request]
        } else {
            throw LoadError(description: "VAEAS_BLAS=\(request): not a known library ("
                            + known.map(\.name).joined(separator: ", ") + ") nor a path to a shared library")
        }
        var errors: [String] = []
        for file in files {
            // RTLD_LOCAL: its symbols stay out of the global namespace, so two BLAS libraries in one
            // process (PyTorch's, numpy's) cannot capture each other's calls.
            if let handle = dlopen(file, RTLD_NOW | RTLD_LOCAL) {
                do {
                    return try BLASLibrary(handle: handle, file: file, selection: request)
                } catch let e as LoadError {
                    errors.append(e.description)
                }
            } else {
                errors.append(dlerror().map { String(cString: $0) } ?? "\(file): cannot be opened")
            }
        }
        throw LoadError(description: "BLAS '\(request)' could not be loaded: " + errors.joined(separator: "; "))
    }

    private init(handle: UnsafeMutableRawPointer, file: String, selection: String) throws {
        func symbol(_ name: String) -> UnsafeMutableRawPointer? { dlsym(handle, name) }
        self.selection = selection
        path = BLASLibrary.resolvedPath(handle: handle, symbol: nil) ?? file

        // OpenBLAS builds that rename their symbols (scipy-openblas: "scipy_cblas_sgemm").
        let prefix = ["", "scipy_"].first { symbol($0 + "cblas_sgemm") != nil }
        let ilp64 = "\(file) is a 64-bit-integer (ILP64) build; vaeas-dist calls the 32-bit-integer (LP64) CBLAS"
        guard let prefix, let s = symbol(prefix + "cblas_sgemm"), let d = symbol(prefix + "cblas_dgemm") else {
            // ILP64 OpenBLAS builds suffix their symbols (numpy's scipy_openblas64_: "scipy_cblas_sgemm64_").
            if ["", "scipy_"].contains(where: { symbol($0 + "cblas_sgemm64_") != nil }) { throw LoadError(description: ilp64) }
            throw LoadError(description: "\(file) exports no cblas_sgemm/cblas_dgemm: not a CBLAS library")
        }
        sgemm = unsafeBitCast(s, to: SGEMM.self)
        dgemm = unsafeBitCast(d, to: DGEMM.self)
        typealias CString = @convention(c) () -> UnsafePointer<CChar>?
        typealias GetInt = @convention(c) () -> Int32
        typealias SetInt = @convention(c) (Int32) -> Void

        if let config = symbol(prefix + "openblas_get_config"), let core = symbol(prefix + "openblas_get_corename"),
           let get = symbol(prefix + "openblas_get_num_threads"), let set = symbol(prefix + "openblas_set_num_threads") {
            vendor = .openblas
            let text = unsafeBitCast(config, to: CString.self)().map { String(cString: $0) } ?? ""
            // An unsuffixed ILP64 build (INTERFACE64=1) says so in its config string.
            if text.contains("USE64BITINT") { throw LoadError(description: ilp64) }
            buildConfig = text
            // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64"
            let words = text.split(separator: " ")
            version = words.count > 1 && words[0] == "OpenBLAS" ? String(words[1]) : "unknown"
            kernel = unsafeBitCast(core, to: CString.self)().map { String(cString: $0) } ?? "unknown"
            let g = unsafeBitCast(get, to: GetInt.self), st = unsafeBitCast(set, to: SetInt.self)
            getThreads = { Int(g()) }
            setThreads = { st(Int32($0)) }
        } else if let versionString = symbol("MKL_Get_Version_String"), let get = symbol("MKL_Get_Max_Threads"),
                  let set = symbol("MKL_Set_Num_Threads") {
            vendor = .mkl
            typealias VersionString = @convention(c) (UnsafeMutablePointer<CChar>, Int32) -> Void
            var buffer = [CChar](repeating: 0, count: 512)
            unsafeBitCast(versionString, to: VersionString.self)(&buffer, Int32(buffer.count))
            let text = String(cString: buffer)
            buildConfig = text
            // "Intel(R) oneAPI Math Kernel Library Version 2026.2-Product Build 20261001 for Intel(R) 64 …"
            version = text.range(of: #"Version [0-9.]+"#, options: .regularExpression)
                .map { String(text[$0].dropFirst(8)) } ?? "unknown"
            // MKL_Get_Version's `Processor`: the code path MKL dispatches to on this CPU, e.g. "Intel(R)
            // Advanced Vector Extensions 2 (Intel(R) AVX2) enabled processors" (mkl_types.h: MKLVersion is
            // four ints, then ProductStatus, Build, Processor, Platform).
            kernel = symbol("MKL_Get_Version").flatMap { f -> String? in
                typealias GetVersion = @convention(c) (UnsafeMutableRawPointer) -> Void
                let raw = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
                defer { raw.deallocate() }
                raw.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
                unsafeBitCast(f, to: GetVersion.self)(raw)
                return raw.load(fromByteOffset: 16 + 2 * MemoryLayout<UInt>.size, as: UnsafePointer<CChar>?.self)
                    .map { BLASLibrary.mklPath(String(cString: $0)) }
            } ?? symbol("mkl_cbwr_get_auto_branch").map {
                BLASLibrary.mklBranch(Int(unsafeBitCast($0, to: GetInt.self)()))
            } ?? "unknown"
            let g = unsafeBitCast(get, to: GetInt.self), st = unsafeBitCast(set, to: SetInt.self)
            getThreads = { Int(g()) }
            setThreads = { st(Int32($0)) }
        } else if let versionString = symbol("bli_info_get_version_str"), let query = symbol("bli_arch_query_id"),
                  let archString = symbol("bli_arch_string"), let get = symbol("bli_thread_get_num_threads"),
                  let set = symbol("bli_thread_set_num_threads") {
            vendor = .blis
            version = unsafeBitCast(versionString, to: CString.self)().map { String(cString: $0) } ?? "unknown"
            typealias ArchString = @convention(c) (Int32) -> UnsafePointer<CChar>?
            kernel = unsafeBitCast(archString, to: ArchString.self)(unsafeBitCast(query, to: GetInt.self)())
                .map { String(cString: $0) } ?? "unknown"
            buildConfig = "BLIS \(version) (\(kernel))"
            typealias GetDim = @convention(c) () -> Int
            typealias SetDim = @convention(c) (Int) -> Void
            let g = unsafeBitCast(get, to: GetDim.self), st = unsafeBitCast(set, to: SetDim.self)
            getThreads = { g() }
            setThreads = { st($0) }
        } else {
            throw LoadError(description: "\(file) has CBLAS but is not OpenBLAS, MKL or BLIS: vaeas-dist cannot set its threads")
        }
    }

    /// MKL's `mkl_cbwr_get_auto_branch()` code path (mkl_types.h's MKL_CBWR_* values).
    static func mklBranch(_ code: Int) -> String {
        [3: "COMPATIBLE", 4: "SSE2", 5: "SSE3", 6: "SSSE3", 7: "SSE4_1", 8: "SSE4_2", 9: "AVX", 10: "AVX2",
         11: "AVX512_MIC", 12: "AVX512", 13: "AVX512_MIC_E1", 14: "AVX512_E1", 15: "AVX10"][code] ?? "branch \(code)"
    }

    /// "Intel(R) Advanced Vector Extensions 2 (Intel(R) AVX2) enabled processors" → "AVX2".
    static func mklPath(_ processor: String) -> String {
        var names: [String] = [], rest = Substring(processor)
        while let open = rest.range(of: "(Intel(R) ") {
            rest = rest[open.upperBound...]
            guard let close = rest.firstIndex(of: ")") else { break }
            names.append(String(rest[..<close]))
            rest = rest[close...]
        }
        return names.isEmpty ? processor : names.joined(separator: ", ")
    }

    /// The file behind a handle (dlinfo's link map), with symlinks resolved.
    static func resolvedPath(handle: UnsafeMutableRawPointer, symbol: String?) -> String? {
        #if os(Linux)
        typealias DLInfo = @convention(c) (UnsafeMutableRawPointer?, Int32, UnsafeMutableRawPointer?) -> Int32
        guard let me = dlopen(nil, RTLD_NOW), let f = dlsym(me, "dlinfo") else { return nil }
        var map: UnsafeMutableRawPointer?
        // RTLD_DI_LINKMAP = 2; struct link_map { ElfW(Addr) l_addr; char *l_name; … }.
        guard unsafeBitCast(f, to: DLInfo.self)(handle, 2, &map) == 0, let map else { return nil }
        guard let name = map.load(fromByteOffset: MemoryLayout<UInt>.size, as: UnsafePointer<CChar>?.self) else { return nil }
        guard let real = realpath(name, nil) else { return String(cString: name) }
        defer { free(real) }
        return String(cString: real)
        #else
        return nil
        #endif
    }

    // MARK: - Is the kernel right for this CPU?

    /// OpenBLAS kernels that use at most SSE3/SSE4: the generic fallbacks a build picks for a CPU
    /// it does not know (0.3.21 on Emerald Rapids picks Prescott).
    static let openBLASGenericKernels: Set<String> = [
        "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine", "northwood",
        "banias", "opteron", "opteron_sse3", "barcelona", "bobcat", "generic", "unknown",
    ]

    /// True when the library runs an SSE-only kernel on a CPU with AVX2 or AVX-512.
    public func runsGenericKernel(on cpu: CPUInfo) -> Bool { BLASLibrary.isGeneric(vendor: vendor, kernel: kernel, on: cpu) }

    public static func isGeneric(vendor: Vendor, kernel: String, on cpu: CPUInfo) -> Bool {
        guard cpu.has("avx2") || cpu.has("avx512f") else { return false }
        let k = kernel.lowercased()
        switch vendor {
        case .openblas: return openBLASGenericKernels.contains(k)
        // MKL names its code path by instruction set ("AVX2", "SSE4.2") on Intel CPUs; on AMD it says
        // "Intel(R) Architecture processors" while its AVX2 sgemm runs (measured: 0.7–1.1 of the AVX2
        // peak on Zen 3), so only a path named SSE counts as generic.
        case .mkl: return k.contains("sse") && !k.contains("avx")
        case .blis: return k == "generic"
        }
    }

    /// The warning to print when `runsGenericKernel`, naming the library, the CPU and the fix; nil otherwise.
    public func genericKernelWarning(cpu: CPUInfo, environment env: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        BLASLibrary.genericKernelWarning(vendor: vendor, version: version, kernel: kernel, path: path, selection: selection,
                                         cpu: cpu, environment: env)
    }

    public static func genericKernelWarning(vendor: Vendor, version: String, kernel: String, path: String, selection: String,
                                            cpu: CPUInfo, environment env: [String: String]) -> String? {
        guard isGeneric(vendor: vendor, kernel: kernel, on: cpu) else { return nil }
        var text = "warning: \(vendor.rawValue) \(version) (\(path)) runs its generic \(kernel) kernel on \(cpu.modelName) "
            + "(\(cpu.vectorExtensions)), which it does not use: matrix products run at a fraction of this CPU's speed. "
        let others = ["scipy-openblas", "mkl"].filter { $0 != selection && !(vendor == .mkl && $0 == "mkl") }
            .map { "VAEAS_BLAS=\($0)" }.joined(separator: " or ")
        if vendor == .openblas, let forced = env["OPENBLAS_CORETYPE"] {
            text += "OPENBLAS_CORETYPE=\(forced) is set in the environment and forces it. If it was set on purpose (old OpenBLAS "
                + "builds compute wrong results on some recent CPUs), keep it and choose a BLAS that knows this CPU: "
                + (others.isEmpty ? "a newer OpenBLAS" : others) + " (scripts/setup.sh installs scipy-openblas)."
        } else {
            text += "The fix: a BLAS that knows this CPU, " + (others.isEmpty ? "a newer build of this library" : others)
                + " (scripts/setup.sh installs scipy-openblas; docs/PERFORMANCE.md \"Which BLAS\")."
        }
        return text
    }

    /// OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE / thread variables as set in the environment, to report them.
    public static func environmentOverrides(_ env: [String: String] = ProcessInfo.processInfo.environment) -> [(String, String)] {
        ["VAEAS_BLAS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "MKL_ENABLE_INSTRUCTIONS",
         "MKL_THREADING_LAYER", "BLIS_ARCH_TYPE"].compactMap { k in env[k].map { (k, $0) } }
    }
}
