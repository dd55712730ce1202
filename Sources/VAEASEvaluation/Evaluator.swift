import VAEASCore
import VAEASDistributed
import Foundation

/// Test-set metrics of a trained VAE (design doc, "Evaluation metrics").
public struct LikelihoodResult: Sendable {
    public var count = 0
    public var iwSamples = 0
    /// Mean −log p(x) by importance weighting (Burda et al. 2015), nats.
    public var nll = 0.0
    /// Mean ELBO, its reconstruction and analytic KL terms (recon averaged over the same K draws).
    public var elbo = 0.0
    public var recon = 0.0
    public var kl = 0.0
    /// Active units: dims d with Var_x(μ_d(x)) ≥ threshold.
    public var activeUnits = 0
    public var auThreshold = 0.01
    public var muVariance: [Double] = []
    /// Some rank's `shouldStop` said stop: the pass was cut short, the numbers are partial (every rank knows).
    public var interrupted = false
}

/// Monte Carlo MI and marginal KL (Hoffman & Johnson 2016; paper §5.2).
public struct MonteCarloResult: Sendable {
    public var samples = 0
    /// mean_j [log q(z_j|x_j) − log q̂(z_j)]
    public var mi = 0.0
    /// mean_j [log q̂(z_j) − log p(z_j)]
    public var md = 0.0
    /// mean_j [log q(z_j|x_j) − log p(z_j)], which mi + md equals by construction.
    public var logRatio = 0.0
    /// mean analytic KL(q(z|x_j) ‖ p(z)) over the same samples, what mi + md estimates.
    public var meanKL = 0.0
}

public enum Evaluator {
    static let log2pi = log(2 * Double.pi)

    /// Copies every slot of `source` that `target` also has (by name).
    static func copyParameters(from source: ParameterStore, to target: ParameterStore) {
        for slot in target.slots {
            guard let s = source.slot(named: slot.name), s.shape == slot.shape else {
                preconditionFailure("parameter \(slot.name) missing or of another shape")
            }
            (target.values + slot.offset).update(from: source.values + s.offset, count: slot.count)
        }
    }

    /// Importance-weighted NLL with K samples per data point, in chunks of at
    /// most `chunkRows` decoder rows, so memory is bounded whatever K is;
    /// ELBO, recon, KL and active units on the same pass. Data points are
    /// sharded over ranks; noise is keyed by (seed, global index, k), so the
    /// result does not depend on the rank count beyond float rounding.
    /// `progress` is called after each chunk of K samples (the stall
    /// watchdog's sign of life: a pass with large K has no other call for minutes).
    /// `shouldStop`, asked before each chunk, ends this rank's share early (a
    /// stop signal: the pass is not to hold up a checkpoint); the ranks then
    /// agree in the final reduction, and the result says `interrupted`.
    public static func likelihood(parameters: ParameterStore, shape: VAEShape, feed: DataFeed, comm: Communicator,
                                  iwSamples K: Int, seed: UInt32, auThreshold: Double = 0.01,
                                  chunkRows: Int = 2048, progress: () -> Void = {},
                                  shouldStop: () -> Bool = { false }) -> LikelihoodResult {
        precondition(K >= 1)
        let kChunk = min(K, chunkRows)
        let perChunk = max(1, chunkRows / kChunk)
        let vae = VAE(shape: shape, capacity: perChunk, samples: kChunk)
        copyParameters(from: parameters, to: vae.store)
        let d = shape.latent
        let rng = Philox(seed: seed, purpose: .evaluationNoise)
        let inputs = Arena()
        let x = inputs.floats(perChunk * shape.input)
        let eps = inputs.floats(perChunk * kChunk * d)
        var lseMax = [Double](repeating: 0, count: perChunk), lseSum = [Double](repeating: 0, count: perChunk)
        var reconAcc = [Double](repeating: 0, count: perChunk)
        var sums = [Double](repeating: 0, count: 5 + 2 * d)   // nll, recon, kl, count, Σμ, Σμ², stopped
        var stopped = false
        let part = BlockPartition(total: feed.count, parts: comm.size).range(comm.rank)
        let indices = (Int32(part.lowerBound)..<Int32(part.upperBound)).map { $0 }
        indices.withUnsafeBufferPointer { all in
            var lo = 0
            while lo < all.count && !stopped {
                let hi = min(lo + perChunk, all.count), n = hi - lo
                let idx = UnsafeBufferPointer(rebasing: all[lo..<hi])
                feed.fill(x, indices: idx, epoch: 0)
                vae.encode(x, n: n)
                for i in 0..<n {
                    lseMax[i] = -.infinity; lseSum[i] = 0; reconAcc[i] = 0
                    for j in 0..<d {
                        let m = Double(vae.mu[i * d + j])
                        sums[4 + j] += m
                        sums[4 + d + j] += m * m
                    }
                }
                var k0 = 0
                while k0 < K {
                    if shouldStop() { stopped = true; break }
                    let kk = min(kChunk, K - k0)
                    for (i, g) in idx.enumerated() {
                        for l in 0..<kk {
                            rng.fillNormal(eps + (i * kk + l) * d, count: d, c1: UInt32(g), c2: 0, c3: UInt32(k0 + l))
                        }
                    }
                    progress()
                    vae.reparameterize(eps: eps, n: n, samples: kk)
                    vae.decode(rows: n * kk)
                    vae.reconstruction(x, n: n, samples: kk, gradScale: nil)
                    for i in 0..<n {
                        var halfLogVar = 0.0
                        for j in 0..<d { halfLogVar += 0.5 * Double(vae.logvar[i * d + j]) }
                        for l in 0..<kk {
                            let r = i * kk + l
                            var zz = 0.0, ee = 0.0
                            for j in 0..<d {
                                let z = Double(vae.z[r * d + j]), e = Double(eps[r * d + j])
                                zz += z * z; ee += e * e
                            }
                            // log w = log p(x|z) + log p(z) − log q(z|x); the 2π terms cancel.
                            let logW = -vae.rowNLL[r] - 0.5 * zz + 0.5 * ee + halfLogVar
                            reconAcc[i] += vae.rowNLL[r]
                            if logW > lseMax[i] {
                                lseSum[i] = lseSum[i] * exp(lseMax[i] - logW) + 1
                                lseMax[i] = logW
                            } else {
                                lseSum[i] += exp(logW - lseMax[i])
                            }
                        }
                    }
                    k0 += kk
                }
                if stopped { break }
                for i in 0..<n {
                    sums[0] += -(lseMax[i] + log(lseSum[i]) - log(Double(K)))
                    sums[1] += reconAcc[i] / Double(K)
                    sums[2] += vae.kl[i]
                    sums[3] += 1
                }
                lo = hi
            }
        }
        sums[4 + 2 * d] = stopped ? 1 : 0
        sums = comm.sum(sums)
        let count = sums[3]
        var r = LikelihoodResult()
        r.interrupted = sums[4 + 2 * d] > 0
        r.count = Int(count)
        r.iwSamples = K
        r.nll = sums[0] / count
        r.recon = sums[1] / count
        r.kl = sums[2] / count
        r.elbo = -(r.recon + r.kl)
        r.auThreshold = auThreshold
        r.muVariance = (0..<d).map { j in sums[4 + d + j] / count - (sums[4 + j] / count) * (sums[4 + j] / count) }
        r.activeUnits = r.muVariance.filter { $0 >= auThreshold }.count
        return r
    }

    /// Monte Carlo MI and MD over `samples` data points (the first S of a
    /// seeded permutation of `feed`), one z_j ~ q(z|x_j) each. log q(z_j|x_k)
    /// for all k comes from two matrix products per block of rows, in Double:
    /// −½[(z∘z)·Aᵀ − 2 z·(μ∘A)ᵀ + C_k], A = 1/σ², C_k = Σ_d (μ²A + log σ²) + D log 2π.
    /// Rows j are sharded over ranks; memory is O(block · S) whatever S is.
    public static func monteCarloMI(parameters: ParameterStore, shape: VAEShape, feed: DataFeed, comm: Communicator,
                                    samples S: Int, seed: UInt32, block: Int = 128) -> MonteCarloResult {
        precondition(S >= 1 && S <= feed.count)
        let d = shape.latent
        let chosen = Array(Philox(seed: seed, purpose: .permutation).permutation(feed.count, stream: 0xE571)[0..<S])
        // Every rank encodes its share of the S points; the posteriors are then allgathered.
        let share = BlockPartition(total: S, parts: comm.size)
        let mine = share.range(comm.rank)
        let chunk = 512
        let vae = VAE(shape: shape, capacity: chunk, samples: 1)
        copyParameters(from: parameters, to: vae.store)
        let inputs = Arena()
        let x = inputs.floats(chunk * shape.input)
        let eps = inputs.floats(chunk * d)
        var muLocal = [Float](repeating: 0, count: mine.count * d), lvLocal = muLocal, zLocal = muLocal
        var logQii = [Double](repeating: 0, count: mine.count)
        var meanKL = 0.0
        let rng = Philox(seed: seed, purpose: .evaluationNoise)
        chosen.withUnsafeBufferPointer { all in
            var lo = mine.lowerBound
            while lo < mine.upperBound {
                let hi = min(lo + chunk, mine.upperBound), n = hi - lo
                let idx = UnsafeBufferPointer(rebasing: all[lo..<hi])
                feed.fill(x, indices: idx, epoch: 0)
                vae.encode(x, n: n)
                for (i, g) in idx.enumerated() { rng.fillNormal(eps + i * d, count: d, c1: UInt32(g), c2: 1, c3: 0) }
                vae.reparameterize(eps: eps, n: n, samples: 1)
                for i in 0..<n {
                    let o = (lo - mine.lowerBound + i) * d
                    var ee = 0.0, lv = 0.0
                    for j in 0..<d {
                        muLocal[o + j] = vae.mu[i * d + j]; lvLocal[o + j] = vae.logvar[i * d + j]; zLocal[o + j] = vae.z[i * d + j]
                        ee += Double(eps[i * d + j] * eps[i * d + j]); lv += Double(vae.logvar[i * d + j])
                    }
                    // The diagonal exactly, from ε: log q(z_j|x_j) = −½|ε|² − ½Σ log σ² − (D/2) log 2π.
                    logQii[lo - mine.lowerBound + i] = -0.5 * ee - 0.5 * lv - 0.5 * Double(d) * log2pi
                    meanKL += vae.kl[i]
                }
                lo = hi
            }
        }
        var mu = [Float](repeating: 0, count: S * d), lv = mu
        let counts = share.rankCounts(width: d)
        muLocal.withUnsafeBufferPointer { s in mu.withUnsafeMutableBufferPointer { comm.allgatherv(send: s, receive: $0, counts: counts) } }
        lvLocal.withUnsafeBufferPointer { s in lv.withUnsafeMutableBufferPointer { comm.allgatherv(send: s, receive: $0, counts: counts) } }
        // A, B = μ∘A (S × D) and C (S) in Double.
        var A = [Double](repeating: 0, count: S * d), B = A, C = [Double](repeating: Double(d) * log2pi, count: S)
        for k in 0..<S {
            for j in 0..<d {
                let a = exp(-Double(lv[k * d + j])), m = Double(mu[k * d + j])
                A[k * d + j] = a; B[k * d + j] = m * a
                C[k] += m * m * a + Double(lv[k * d + j])
            }
        }
        var miSum = 0.0, mdSum = 0.0, ratioSum = 0.0
        let rowsMax = min(block, max(mine.count, 1))
        var Z = [Double](repeating: 0, count: rowsMax * d), Z2 = Z
        var L = [Double](repeating: 0, count: rowsMax * S)
        var r0 = 0
        while r0 < mine.count {
            let rows = min(rowsMax, mine.count - r0)
            for i in 0..<rows {
                for j in 0..<d { let z = Double(zLocal[(r0 + i) * d + j]); Z[i * d + j] = z; Z2[i * d + j] = z * z }
            }
            A.withUnsafeBufferPointer { a in B.withUnsafeBufferPointer { b in Z.withUnsafeBufferPointer { z in
                Z2.withUnsafeBufferPointer { z2 in L.withUnsafeMutableBufferPointer { l in
                    BLAS.dgemm(transA: false, transB: true, m: rows, n: S, k: d, alpha: -0.5, a: z2.baseAddress!, lda: d,
                               b: a.baseAddress!, ldb: d, beta: 0, c: l.baseAddress!, ldc: S)
                    BLAS.dgemm(transA: false, transB: true, m: rows, n: S, k: d, alpha: 1, a: z.baseAddress!, lda: d,
                               b: b.baseAddress!, ldb: d, beta: 1, c: l.baseAddress!, ldc: S)
                } } } } }
            for i in 0..<rows {
                let j = mine.lowerBound + r0 + i
                var m = -Double.infinity
                for k in 0..<S {
                    let v = k == j ? logQii[r0 + i] : L[i * S + k] - 0.5 * C[k]
                    L[i * S + k] = v
                    if v > m { m = v }
                }
                var s = 0.0
                for k in 0..<S { s += exp(L[i * S + k] - m) }
                let logQhat = m + log(s) - log(Double(S))
                var zz = 0.0
                for q in 0..<d { zz += Z2[i * d + q] }
                let logP = -0.5 * zz - 0.5 * Double(d) * log2pi
                miSum += logQii[r0 + i] - logQhat
                mdSum += logQhat - logP
                ratioSum += logQii[r0 + i] - logP
            }
            r0 += rows
        }
        let t = comm.sum([miSum, mdSum, ratioSum, meanKL])
        var r = MonteCarloResult()
        r.samples = S
        r.mi = t[0] / Double(S); r.md = t[1] / Double(S); r.logRatio = t[2] / Double(S); r.meanKL = t[3] / Double(S)
        return r
    }
}
