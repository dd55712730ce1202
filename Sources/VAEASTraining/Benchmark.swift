import VAEASConfig
import VAEASCore
import VAEASDistributed
import VAEASEvaluation
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Throughput of training steps against what the BLAS (sgemm) reaches on the same
/// matrix shapes in the same process: their ratio says how much of the step
/// time is spent outside the products (elementwise kernels, loss,
/// communication, optimizer).
public enum Benchmark {
    /// One sgemm call of the step, as `Linear` issues it.
    public struct GemmShape: Hashable, Sendable {
        public let transA: Bool, transB: Bool, m: Int, n: Int, k: Int
        public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    }

    /// Every sgemm of one training step for `rows` data points on this rank:
    /// forward, dW and (where computed) dinp of each Linear.
    public static func stepShapes(_ vae: VAE, rows: Int) -> [GemmShape] {
        var out: [GemmShape] = []
        for (l, rps, inputGrad) in vae.linearLayers {
            let r = rows * rps
            out.append(GemmShape(transA: false, transB: true, m: r, n: l.outFeatures, k: l.inFeatures))
            out.append(GemmShape(transA: true, transB: false, m: l.outFeatures, n: l.inFeatures, k: r))
            if inputGrad { out.append(GemmShape(transA: false, transB: false, m: r, n: l.inFeatures, k: l.outFeatures)) }
        }
        return out
    }

    /// The VAE-AS classifier's sgemm calls for one step: its hidden layers on
    /// this rank's `localRows` rows (forward, dW, and the input gradient when
    /// the Î term flows into z), and the partitioned output layer on all
    /// `globalRows` rows against this rank's V_r label rows.
    public static func classifierShapes(_ c: AuxiliaryClassifier, localRows: Int, globalRows: Int, withMI: Bool) -> [GemmShape] {
        var out: [GemmShape] = []
        for (k, l) in (c.hidden?.layers ?? []).enumerated() {
            out.append(GemmShape(transA: false, transB: true, m: localRows, n: l.outFeatures, k: l.inFeatures))
            out.append(GemmShape(transA: true, transB: false, m: l.outFeatures, n: l.inFeatures, k: localRows))
            // CE path: dinp for every layer but the first; Î path: dinp for all layers.
            if k > 0 { out.append(GemmShape(transA: false, transB: false, m: localRows, n: l.inFeatures, k: l.outFeatures)) }
            if withMI { out.append(GemmShape(transA: false, transB: false, m: localRows, n: l.inFeatures, k: l.outFeatures)) }
        }
        // The tree walks paths with dot products, not matrix products.
        guard c.output.softmax == .full else { return out }
        let v = c.output.ownedRows, h = c.output.width
        out.append(GemmShape(transA: false, transB: true, m: globalRows, n: v, k: h))
        out.append(GemmShape(transA: true, transB: false, m: v, n: h, k: globalRows))
        // dH of CE and of Î in one product of the stacked logit gradients (2R rows with Î).
        out.append(GemmShape(transA: false, transB: false, m: withMI ? 2 * globalRows : globalRows, n: h, k: v))
        return out
    }

    /// A named set of products timed together (`bench gemm`).
    public struct GemmGroup: Sendable {
        public let name: String
        public let shapes: [GemmShape]
        public var flops: Double { shapes.reduce(0) { $0 + $1.flops } }
    }

    /// The products that decide a step's speed, for choosing a BLAS (docs/PERFORMANCE.md "Which BLAS"):
    /// every product of the VAE's step (forward, dW and dinput of each layer, `stepShapes`) at each
    /// batch, and the classifier's output layer, V label rows of width `width`, on `rows` rows at each V:
    /// logits = H·Wᵀ, dW = dLᵀ·H, dH = dL·W (the α = β case: dH of CE alone).
    public static func blasSuite(shape: VAEShape, batches: [Int], labels: [Int], width: Int, rows: Int) -> [GemmGroup] {
        var groups: [GemmGroup] = []
        for b in batches {
            let vae = VAE(shape: shape, capacity: b, samples: 1)
            groups.append(GemmGroup(name: "vae-b\(b)", shapes: stepShapes(vae, rows: b)))
        }
        for v in labels {
            groups.append(GemmGroup(name: "output-v\(v)", shapes: [
                GemmShape(transA: false, transB: true, m: rows, n: v, k: width),
                GemmShape(transA: true, transB: false, m: v, n: width, k: rows),
                GemmShape(transA: false, transB: false, m: rows, n: width, k: v),
            ]))
        }
        return groups
    }

    /// Seconds per replay of `shapes` with plain sgemm on scratch buffers, best of `repeats`.
    public static func sgemmSeconds(_ shapes: [GemmShape], repeats: Int) -> Double {
        let size = shapes.map { max($0.m * $0.k, $0.k * $0.n, $0.m * $0.n) }.max() ?? 1
        let a = UnsafeMutablePointer<Float>.allocate(capacity: size)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: size)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: size)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<size { a[i] = Float(i % 7) * 0.01; b[i] = Float(i % 5) * 0.01; c[i] = 0 }
        var best = Double.infinity
        for _ in 0..<(repeats + 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for s in shapes {
                BLAS.gemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k,
                          a: a, lda: s.transA ? s.m : s.k, b: b, ldb: s.transB ? s.k : s.n,
                          beta: 1, c: c, ldc: s.n)
            }
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            best = min(best, dt)
        }
        return best
    }

    /// This process's peak resident set in bytes: `VmHWM` of /proc/self/status
    /// (Linux), else getrusage's ru_maxrss (kilobytes on Linux); nil if neither answers.
    /// The number PyTorch's `resource.getrusage(RUSAGE_SELF).ru_maxrss` gives for its process.
    public static func peakResidentBytes() -> Int? {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) {
            // "VmHWM:     123456 kB"
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kb = Int(fields[1]) { return kb * 1024 }
        }
        #if canImport(Glibc)
        var usage = rusage()
        if getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0, usage.ru_maxrss > 0 { return usage.ru_maxrss * 1024 }
        #endif
        return nil
    }

    /// Resets the peak to the current resident set (Linux ≥ 4.0: "5" into
    /// /proc/self/clear_refs), so that each row of a sweep reports its own
    /// peak; false where that is not possible (the peak then runs on).
    @discardableResult
    public static func resetPeakResident() -> Bool {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        do { try h.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    /// Every rank's peak resident bytes (collective; −1 where unknown), in rank order.
    public static func peakResidentBytesPerRank(_ comm: Communicator) -> [Int] {
        var mine = [Double](repeating: 0, count: comm.size)
        mine[comm.rank] = Double(peakResidentBytes() ?? -1)
        return comm.sum(mine).map { Int($0) }
    }
}
