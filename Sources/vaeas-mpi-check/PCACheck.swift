import Foundation
import VAEAS
import VAEASData

// `vaeas-mpi-check pca-leaves`: the PCA leaf order as a run shares it (rank 0
// computes, every rank receives) against the order this rank computes alone.
// Prints {"ranks", "fnv", "mismatches"} from rank 0; exit 1 on a mismatch.
func pcaLeavesCheck() -> Int32 {
    let comm: MPICommunicator
    do { comm = try MPICommunicator() } catch { print("error: \(error)"); return 2 }
    // 3001 random 8×8 images, 700 labels by a seeded random assignment.
    var s: UInt64 = 7
    let count = 3001, side = 8
    let pixels = (0..<(count * side * side)).map { _ -> UInt8 in
        s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: s >> 56)
    }
    let data = Dataset(name: "pca-check", split: "train",
                       images: IDXImages(path: "mem", count: count, rows: side, cols: side, pixels: pixels), labels: nil)
    let shared = VAEASModel.sharedPCALeaves(samples: count, labels: 700, kind: .random, seed: 3, dataset: data, comm: comm)
    let alone = LabelAssignment.pcaLeaves(samples: count, labels: 700, kind: .random, seed: 3, dataset: data)
    let mismatches = comm.sum([Double(zip(shared, alone).filter { $0 != $1 }.count)])[0]
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for v in shared { h = (h ^ UInt64(UInt32(bitPattern: v))) &* 0x100_0000_01b3 }
    if comm.isRoot { print("{\"ranks\": \(comm.size), \"fnv\": \"\(String(h, radix: 16))\", \"mismatches\": \(Int(mismatches))}") }
    comm.finalize()
    return mismatches == 0 ? 0 : 1
}
