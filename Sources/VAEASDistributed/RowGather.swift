import VAEASConfig
import VAEASCore

/// Per-rank element counts of one batch's rows: the allgather of the hidden
/// rows (h floats each) and the reduce-scatter of dH (h, or 2h when the Î
/// gradient rides along).
public struct RowLayout: Sendable {
    public let gather: RankCounts
    public let scatter1: RankCounts
    public let scatter2: RankCounts
}

/// The forward/backward collective pair around the partitioned output layer
/// (Megatron-LM's `_GatherFromSequenceParallelRegion` idea): forward
/// allgathers every rank's hidden rows into H (R × h), so each rank can score
/// its own label rows for all R rows of the batch; backward reduce-scatters
/// the partial dH (R × h, or R × 2h for [CE | Î]) so each rank receives the
/// summed gradient of its own rows. Owns its buffers and the row layouts of
/// the batch sizes a run meets, so a step allocates nothing.
public final class RowGather {
    public let comm: Communicator
    public let width: Int
    public let globalRowCapacity: Int
    public let localRowCapacity: Int
    /// All R hidden rows after `forward`, and their labels.
    public let hidden: UnsafeMutablePointer<Float>           // R × h
    public let targets: UnsafeMutablePointer<Int32>          // R
    /// Written by the layer before `backward`: dH partial sums, row-major with `columns(withMI:)` columns.
    public let partial: UnsafeMutablePointer<Float>          // R × 2h
    /// After `backward`: the gradients wrt this rank's hidden rows, of the
    /// classifier's CE and of the Î term.
    public let dHiddenCE: UnsafeMutablePointer<Float>        // localRows × h
    public let dHiddenMI: UnsafeMutablePointer<Float>        // localRows × h
    private let received: UnsafeMutablePointer<Float>        // localRows × 2h
    private let arena = Arena()
    private var layouts: [Int: RowLayout] = [:]
    public private(set) var rows = 0
    public private(set) var localRows = 0
    private var layout: RowLayout?
    /// Bytes this rank sent in the last forward + backward.
    public private(set) var bytesSent = 0

    public init(comm: Communicator, width: Int, globalRowCapacity: Int, localRowCapacity: Int) {
        self.comm = comm
        self.width = width
        self.globalRowCapacity = globalRowCapacity
        self.localRowCapacity = localRowCapacity
        hidden = arena.floats(globalRowCapacity * width)
        targets = arena.int32s(globalRowCapacity)
        partial = arena.floats(globalRowCapacity * 2 * width)
        dHiddenCE = arena.floats(localRowCapacity * width)
        dHiddenMI = arena.floats(localRowCapacity * width)
        received = arena.floats(localRowCapacity * 2 * width)
    }

    /// Row counts of a global batch of `batch` samples with `samples` rows
    /// each, split over ranks as the batch is. Cached: a run has at most two batch sizes.
    public func layout(batch: Int, samples: Int) -> RowLayout {
        let key = batch &* 4096 &+ samples
        if let c = layouts[key] { return c }
        let p = BlockPartition(total: batch, parts: comm.size)
        let rowsPer = (0..<comm.size).map { p.count($0) * samples }
        let c = RowLayout(gather: RankCounts(rowsPer.map { $0 * width }), scatter1: RankCounts(rowsPer.map { $0 * width }),
                          scatter2: RankCounts(rowsPer.map { $0 * 2 * width }))
        layouts[key] = c
        return c
    }

    public func columns(withMI: Bool) -> Int { withMI ? 2 * width : width }

    /// Forward: H ← allgatherv(this rank's `localRows` hidden rows) for a
    /// global batch of `batch` samples × `samples` rows; `rowLabels` are all
    /// R rows' labels (the same on every rank), kept beside H.
    public func forward(_ hLocal: UnsafePointer<Float>, localRows: Int, targets rowLabels: UnsafeBufferPointer<Int32>,
                        batch: Int, samples: Int) {
        let layout = self.layout(batch: batch, samples: samples)
        rows = batch * samples
        self.localRows = localRows
        self.layout = layout
        precondition(rows <= globalRowCapacity && localRows <= localRowCapacity, "RowGather: batch exceeds its capacity")
        precondition(rowLabels.count == rows, "RowGather: \(rowLabels.count) labels for \(rows) rows")
        targets.update(from: rowLabels.baseAddress!, count: rows)
        comm.allgatherv(send: UnsafeBufferPointer(start: hLocal, count: localRows * width),
                        receive: UnsafeMutableBufferPointer(start: hidden, count: rows * width), counts: layout.gather)
        bytesSent = comm.size > 1 ? 4 * localRows * width : 0
    }

    /// Backward: reduce-scatterv of `partial` (R rows of [dH_CE | dH_Î]), then
    /// this rank's rows split into `dHiddenCE` and `dHiddenMI`.
    public func backward(withMI: Bool) {
        guard let layout else { preconditionFailure("RowGather.backward before forward") }
        let h = width, cols = columns(withMI: withMI)
        comm.reduceScatterv(send: UnsafeBufferPointer(start: partial, count: rows * cols),
                            receive: UnsafeMutableBufferPointer(start: received, count: localRows * cols),
                            counts: withMI ? layout.scatter2 : layout.scatter1)
        for r in 0..<localRows {
            (dHiddenCE + r * h).update(from: received + r * cols, count: h)
            if withMI { (dHiddenMI + r * h).update(from: received + r * cols + h, count: h) }
        }
        if comm.size > 1 { bytesSent += 4 * rows * cols }
    }

    public var memoryBytes: Int { arena.bytes }
}
