// Worker for the distributed tests: run under `mpirun -n P`, it checks the
// partitioned softmax on every rank against a plain single-process softmax in
// Double on the full V × h layer, and prints the worst errors as JSON (rank 0).
// Exit status 1 when an error exceeds float32 rounding.
import Foundation
import VAEAS
import _TestSupport

// `vaeas-mpi-check step-dump …`: one step's inputs, losses and gradients (StepDump.swift).
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "step-dump" {
    exit(stepDump(Array(CommandLine.arguments.dropFirst(2))))
}
// `vaeas-mpi-check pca-leaves`: the shared PCA leaf order (PCACheck.swift).
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "pca-leaves" {
    exit(pcaLeavesCheck())
}

struct Rand {
    var s: UInt64
    mutating func next() -> Float {
        s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(s >> 40) / Float(1 << 24) * 2 - 1
    }
}

let comm: MPICommunicator
do { comm = try MPICommunicator() } catch { print("error: \(error)"); exit(2) }
let V = 1000, h = 7, B = 10, L = 2, rows = B * L   // V = 1000: not divisible by 3
var rng = Rand(s: 42)
let H = (0..<(rows * h)).map { _ in rng.next() * 2 }
let W = (0..<(V * h)).map { _ in rng.next() }
let bias = (0..<V).map { _ in rng.next() * 0.5 }
let targets = (0..<rows).map { _ in Int32(Int(rng.next() * 0.5 * Float(V) + Float(V) / 2) % V) }
let batch = BlockPartition(total: B, parts: comm.size)
let myRows = (batch.range(comm.rank).lowerBound * L)..<(batch.range(comm.rank).upperBound * L)
let ceScale = 1 / Float(rows), miScale = -0.7 / Float(rows)

// Reference in Double over all V labels.
let (p, ce, ent) = referenceSoftmax(H: H, W: W, bias: bias, targets: targets, rows: rows, width: h)

var worst: [String: Double] = [:]
func record(_ key: String, _ got: Double, _ want: Double, scale: Double) {
    let e = abs(got - want) / max(scale, 1e-30)
    worst[key] = max(worst[key] ?? 0, e)
}

let sm = PartitionedSoftmax(labels: V, width: h, comm: comm, globalRowCapacity: rows, localRowCapacity: batch.maxCount * L)
let lo = sm.owned.lowerBound
for k in 0..<sm.owned.count {
    for j in 0..<h { sm.store.values[sm.weight + k * h + j] = W[(lo + k) * h + j] }
    sm.store.values[sm.bias + k] = bias[lo + k]
}
for (e, est) in MIEstimator.allCases.enumerated() {
    sm.store.zeroGrads()
    H.withUnsafeBufferPointer { hp in
        targets.withUnsafeBufferPointer { t in
            sm.forward(hLocal: hp.baseAddress! + myRows.lowerBound * h, localRows: myRows.count, targets: t, batch: B, samples: L)
        }
    }
    for r in 0..<rows {
        record("cross_entropy", sm.crossEntropy[r], ce[r], scale: max(1, ce[r]))
        record("entropy", sm.entropy[r], ent[r], scale: max(1, ent[r]))
    }
    sm.backward(ceScale: ceScale, miScale: miScale, estimator: est)
    // Reference gradients wrt the logits.
    var gCE = [[Double]](repeating: [Double](repeating: 0, count: V), count: rows)
    var gMI = gCE
    for r in 0..<rows {
        let t = Int(targets[r])
        let pe = p[r][t], P = min(max(1 - pe, 1e-12), 1 - 1e-12)
        let coef = (log((1 - P) / P) + log(Double(V - 1))) * pe
        let meanL = p[r].enumerated().reduce(0.0) { acc, jp in acc + jp.1 * (log(max(jp.1, 1e-300))) }
        for j in 0..<V {
            let d = j == t ? 1.0 : 0.0
            gCE[r][j] = Double(ceScale) * (p[r][j] - d)
            switch est {
            // −p_j (ℓ_j − Σ p ℓ) = −p_j (log p_j − Σ p log p)
            case .entropy: gMI[r][j] = Double(miScale) * (p[r][j] > 0 ? -p[r][j] * (log(p[r][j]) - meanL) : 0)
            case .ce: gMI[r][j] = Double(miScale) * (p[r][j] - d)
            case .fano: gMI[r][j] = Double(miScale) * coef * (p[r][j] - d)
            }
        }
    }
    if e == 0 {
        // Weight gradients come from CE only: the same for every estimator.
        for k in 0..<sm.owned.count {
            let j = lo + k
            var db = 0.0
            for r in 0..<rows { db += gCE[r][j] }
            record("d_bias", Double(sm.store.grads[sm.bias + k]), db, scale: 1e-2)
            for c in 0..<h {
                var dw = 0.0
                for r in 0..<rows { dw += gCE[r][j] * Double(H[r * h + c]) }
                record("d_weight", Double(sm.store.grads[sm.weight + k * h + c]), dw, scale: 1e-2)
            }
        }
    }
    for (i, r) in myRows.enumerated() {
        for c in 0..<h {
            var dce = 0.0, dmi = 0.0
            for j in 0..<V { dce += gCE[r][j] * Double(W[j * h + c]); dmi += gMI[r][j] * Double(W[j * h + c]) }
            record("d_hidden_classifier", Double(sm.rowGather.dHiddenCE[i * h + c]), dce, scale: 1e-2)
            record("d_hidden_\(est.rawValue)", Double(sm.rowGather.dHiddenMI[i * h + c]), dmi, scale: 1e-2)
        }
    }
}

let keys = worst.keys.sorted()
let reduced = comm.max(keys.map { worst[$0]! })
let ok = reduced.allSatisfy { $0 < 1e-4 }
if comm.rank == 0 {
    let fields = zip(keys, reduced).map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ")
    print("{\"ranks\": \(comm.size), \"labels\": \(V), \"rows_per_rank\": \(sm.owned.count), \(fields), \"ok\": \(ok)}")
}
comm.finalize()
exit(ok ? 0 : 1)
