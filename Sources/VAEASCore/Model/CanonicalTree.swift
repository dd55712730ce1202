/// The hierarchical softmax's tree (paper §3.5), the same at every rank count:
/// the node over leaves [lo, hi) splits at lo + ⌈(hi − lo)/2⌉ (the left child
/// gets the larger half); nodes are numbered in preorder. The partitioned
/// layer (`PartitionedTreeSoftmax`) and the PCA leaf order (`PCALeafOrder`)
/// both follow it.
public enum CanonicalTree {
    /// Where the node over [lo, hi) splits.
    @inline(__always)
    public static func split(_ lo: Int, _ hi: Int) -> Int { lo + (hi - lo + 1) / 2 }
}
