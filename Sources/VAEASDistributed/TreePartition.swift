import VAEASCore

/// Which nodes of the canonical tree (`CanonicalTree`) rank r of P holds
/// (design doc, "The hierarchical softmax, partitioned"). With d = ⌈log₂ P⌉,
/// the subtrees hanging at depth d ("units", 2^d of them when V ≥ 2^d) are
/// dealt contiguously to the ranks, so each rank owns the subtrees over one
/// contiguous leaf range; the 2^d − 1 nodes above them are replicated. The
/// local store holds the replicated top first (rows 0..<topCount, one
/// contiguous block to allreduce), then each owned unit's nodes in preorder.
public struct TreePartition: Sendable {
    /// A subtree at depth `topDepth` (or a leaf reached above it): its leaf range and its root's preorder id.
    public struct Unit: Sendable, Equatable {
        public let lo: Int, hi: Int, root: Int
        /// Internal nodes of the subtree: hi − lo − 1, numbered root …< root + size in preorder.
        public var nodes: Int { hi - lo - 1 }
    }

    public let labels: Int
    public let ranks: Int
    /// Depth of the replicated top: ⌈log₂ P⌉.
    public let topDepth: Int
    /// Every unit, left to right.
    public let units: [Unit]
    /// This rank's units and its contiguous leaf range.
    public let myUnits: Range<Int>
    public let ownedLeaves: Range<Int>
    /// Preorder ids of the replicated top nodes, ascending (their local rows 0..<topCount).
    public let topIDs: [Int]
    /// Local row of each of my units' first node.
    public let unitBase: [Int]
    /// Rows of the local store: the replicated top plus my units' nodes.
    public let nodeCount: Int
    /// ⌈log₂ V⌉, the longest root-to-leaf path.
    public let maxDepth: Int

    public var topCount: Int { topIDs.count }

    public init(labels: Int, ranks: Int, rank: Int) {
        precondition(labels >= 2, "the tree needs V ≥ 2 labels")
        self.labels = labels
        self.ranks = ranks
        var d = 0
        while (1 << d) < ranks { d += 1 }
        topDepth = d
        var units: [Unit] = []
        var tops: [Int] = []
        func walk(_ lo: Int, _ hi: Int, _ id: Int, _ depth: Int) {
            if depth == d || hi - lo < 2 { units.append(Unit(lo: lo, hi: hi, root: id)); return }
            tops.append(id)
            let mid = CanonicalTree.split(lo, hi)
            walk(lo, mid, id + 1, depth + 1)
            walk(mid, hi, id + (mid - lo), depth + 1)
        }
        walk(0, labels, 0, 0)
        self.units = units
        topIDs = tops.sorted()
        myUnits = BlockPartition(total: units.count, parts: ranks).range(rank)
        ownedLeaves = myUnits.isEmpty ? 0..<0 : units[myUnits.lowerBound].lo..<units[myUnits.upperBound - 1].hi
        var base: [Int] = []
        var next = tops.count
        for u in myUnits { base.append(next); next += units[u].nodes }
        unitBase = base
        nodeCount = next
        var depth = 0
        while (1 << depth) < labels { depth += 1 }
        maxDepth = depth
    }

    /// Local row of the node with preorder id `id` met at `depth` on a path
    /// through unit `unitIndex` (callers only ask for nodes this rank holds).
    @inline(__always)
    public func localRow(id: Int, depth: Int, unitIndex: Int) -> Int {
        if depth < topDepth {
            var lo = 0, hi = topIDs.count
            while lo < hi { let mid = (lo + hi) / 2; if topIDs[mid] < id { lo = mid + 1 } else { hi = mid } }
            return lo
        }
        let u = unitIndex - myUnits.lowerBound
        return unitBase[u] + (id - units[unitIndex].root)
    }

    /// Index of the unit holding `leaf` (binary search over the units' ranges).
    @inline(__always)
    public func unit(of leaf: Int) -> Int {
        var lo = 0, hi = units.count - 1
        while lo < hi { let mid = (lo + hi + 1) / 2; if units[mid].lo <= leaf { lo = mid } else { hi = mid - 1 } }
        return lo
    }

    /// (local row, preorder id) of every node this rank holds, the replicated top first.
    public var ownedNodes: [(row: Int, id: Int)] {
        var out = topIDs.enumerated().map { (row: $0.offset, id: $0.element) }
        for (i, u) in myUnits.enumerated() {
            for k in 0..<units[u].nodes { out.append((row: unitBase[i] + k, id: units[u].root + k)) }
        }
        return out
    }

    /// Unit-owned (non-replicated) nodes on each rank, in rank order: the gather's counts.
    public var unitNodesPerRank: [Int] {
        (0..<ranks).map { r in BlockPartition(total: units.count, parts: ranks).range(r).reduce(0) { $0 + units[$1].nodes } }
    }
}
