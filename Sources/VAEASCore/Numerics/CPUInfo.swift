import Foundation

/// What the machine says about its CPU (/proc/cpuinfo's first processor, cpufreq), and the core's
/// nominal single-precision peak derived from it, so that a BLAS rate can be read as a fraction of
/// what the core can do rather than of another measurement that may be crippled as well.
public struct CPUInfo: Sendable {
    public let vendor: String      // "GenuineIntel", "AuthenticAMD"
    public let family: Int
    public let model: Int
    public let modelName: String   // "Intel(R) Xeon(R) Platinum 8581C CPU @ 2.10GHz"
    public let flags: Set<String>
    /// Clock in GHz and where it came from; nil when the machine tells nothing.
    public let clockGHz: Double?
    public let clockSource: String

    public func has(_ flag: String) -> Bool { flags.contains(flag) }

    /// "AVX-512 (F, BF16), AVX2, FMA".
    public var vectorExtensions: String {
        var parts: [String] = []
        if has("avx512f") {
            var sub = ["F"]
            if has("avx512_bf16") { sub.append("BF16") }
            if has("avx512_fp16") { sub.append("FP16") }
            parts.append("AVX-512 (\(sub.joined(separator: ", ")))")
        }
        if has("avx2") { parts.append("AVX2") }
        if has("fma") { parts.append("FMA") }
        if parts.isEmpty { parts.append(has("avx") ? "AVX" : "SSE only") }
        return parts.joined(separator: ", ")
    }

    /// Single-precision FLOPs per cycle per core: vector lanes × FMA units × 2 (a fused multiply-add
    /// is two FLOPs), with the unit counts of the families this project runs on:
    /// - Intel with AVX-512 (Skylake-SP … Emerald Rapids server parts): 2 × 512-bit FMA → 64
    ///   (some Xeon Silver/Bronze parts have one 512-bit unit: half);
    /// - AMD Zen 4 (family 0x19 with AVX-512): 512-bit ops on 2 × 256-bit units → 32;
    /// - AMD Zen 5 (family 0x1A): 2 × 512-bit → 64;
    /// - AVX2 + FMA (Haswell …, Zen 2/3): 2 × 256-bit → 32; Zen 1 (family 0x17, model < 0x30): 16;
    /// - AVX without FMA: one 256-bit add + one mul → 16; SSE: 8.
    public var flopsPerCycle: (value: Int, how: String) {
        let amd = vendor == "AuthenticAMD"
        if has("avx512f") {
            if amd && family == 0x19 { return (32, "AVX-512 on 2 × 256-bit FMA units (Zen 4) × 8 lanes × 2") }
            return (64, "2 × 512-bit FMA units × 16 lanes × 2")
        }
        if has("avx2") && has("fma") {
            if amd && family == 0x17 && model < 0x30 { return (16, "2 × 128-bit FMA units (Zen 1) × 4 lanes × 2") }
            return (32, "2 × 256-bit FMA units × 8 lanes × 2")
        }
        if has("avx") { return (16, "256-bit add + mul, 8 lanes") }
        return (8, "128-bit add + mul, 4 lanes")
    }

    /// Nominal single-precision peak of one core in GFLOP/s (nil without a clock).
    public var peakGFLOPSPerCore: Double? { clockGHz.map { $0 * Double(flopsPerCycle.value) } }

    /// "32 FLOP/cycle (2 × 256-bit FMA units × 8 lanes × 2) × 2.45 GHz (/proc/cpuinfo cpu MHz) = 78.2 GFLOP/s per core".
    public var peakText: String {
        let f = flopsPerCycle
        guard let ghz = clockGHz, let peak = peakGFLOPSPerCore else { return "\(f.value) FLOP/cycle (\(f.how)); clock unknown" }
        return String(format: "%d FLOP/cycle (%@) × %.2f GHz (%@) = %.1f GFLOP/s per core", f.value, f.how, ghz, clockSource, peak)
    }

    /// "AMD EPYC (family 25 model 1)".
    public var description: String { "\(modelName) (family \(family) model \(model))" }

    nonisolated(unsafe) public static let current: CPUInfo = read()

    /// Reads /proc/cpuinfo and cpufreq; empty fields where Linux tells nothing.
    public static func read(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
                            maxFrequencyKHz: String? = try? String(contentsOfFile: "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
                                                                   encoding: .utf8)) -> CPUInfo {
        var fields: [String: String] = [:]
        // The first processor's block only.
        for line in (cpuinfo ?? "").split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { if !fields.isEmpty { break } else { continue } }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            if fields[key] == nil { fields[key] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        let name = fields["model name"] ?? "unknown CPU"
        var ghz: Double?, source = "unknown"
        if let khz = maxFrequencyKHz.flatMap({ Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }), khz > 0 {
            ghz = khz / 1e6; source = "cpufreq cpuinfo_max_freq"
        } else if let r = name.range(of: #"@ *[0-9.]+ *GHz"#, options: .regularExpression),
                  let g = Double(name[r].dropFirst().trimmingCharacters(in: .whitespaces).dropLast(3).trimmingCharacters(in: .whitespaces)) {
            ghz = g; source = "the model name's nominal clock"
        } else if let mhz = fields["cpu MHz"].flatMap(Double.init), mhz > 0 {
            ghz = mhz / 1e3; source = "/proc/cpuinfo cpu MHz"
        }
        return CPUInfo(vendor: fields["vendor_id"] ?? "unknown", family: fields["cpu family"].flatMap { Int($0) } ?? -1,
                       model: fields["model"].flatMap { Int($0) } ?? -1, modelName: name,
                       flags: Set((fields["flags"] ?? "").split(separator: " ").map(String.init)),
                       clockGHz: ghz, clockSource: source)
    }
}
