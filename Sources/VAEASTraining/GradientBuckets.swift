import VAEASCore
import VAEASDistributed
import VAEASConfig
import Dispatch

/// The fused gradient buffer cut into buckets of whole layers, reduced with
/// nonblocking allreduces as soon as backward has finished their layers
/// (PyTorch DDP's `Reducer`, Horovod's tensor fusion): the buffer's tail
/// first (the classifier's hidden layers and the decoder's last layers,
/// which backward finishes first), its head (the encoder's first layer) last.
/// Every bucket is waited for before the optimizer reads the gradients.
///
/// Each element is still reduced exactly once, by one allreduce over the same
/// ranks; what can differ from the one blocking allreduce is the order of the
/// P − 1 additions MPI does per element (see docs/ARCHITECTURE.md): none at
/// P = 2, where every algorithm adds the same two numbers.
///
/// Open MPI advances a nonblocking collective only inside MPI calls, so every
/// layer boundary of backward polls the oldest bucket in flight (MPI_Test).
public final class GradientBuckets {
    /// Element ranges of the buckets, in the order backward completes them.
    public let ranges: [Range<Int>]
    private let store: ParameterStore
    /// Layer name → its bucket; per bucket the layers still to finish.
    private let bucketOf: [String: Int]
    private let layers: [Int]
    private var pending: [Int] = []
    private var requests: [CollectiveRequest?] = []
    private var next = 0          // next bucket to start, in order
    private var oldest = 0        // oldest request not seen complete

    public init(table: ParameterTable, store: ParameterStore, bucketBytes: Int) {
        self.store = store
        var ranges: [Range<Int>] = [], bucketOf: [String: Int] = [:], layers: [Int] = []
        var current: Range<Int>? = nil, count = 0
        for e in table.entries.reversed() {
            let w = store.slot(named: "\(e.name).weight")!, b = store.slot(named: "\(e.name).bias")!
            let lo = min(w.offset, b.offset), hi = max(w.offset + w.count, b.offset + b.count)
            if let c = current {
                precondition(hi == c.lowerBound, "GradientBuckets: layers not contiguous in the fused buffer")
                current = lo..<c.upperBound
            } else {
                current = lo..<hi
            }
            bucketOf[e.name] = ranges.count
            count += 1
            if 4 * current!.count >= bucketBytes {
                ranges.append(current!); layers.append(count)
                current = nil; count = 0
            }
        }
        if let c = current { ranges.append(c); layers.append(count) }
        self.ranges = ranges
        self.bucketOf = bucketOf
        self.layers = layers
    }

    /// Before backward.
    func begin() {
        pending = layers
        requests = Array(repeating: nil, count: ranges.count)
        next = 0
        oldest = 0
    }

    /// Backward finished `layer`'s gradients: start every bucket that is now
    /// complete (in bucket order, so every rank starts the same requests in the
    /// same order), then poll the oldest request to drive progress.
    func ready(_ layer: Linear, comm: Communicator) {
        guard let k = bucketOf[layer.name] else { return }
        pending[k] -= 1
        // Inside backward, but gradient communication (exposed) for the phase split.
        Trace.span("gradient buckets", .gradientCommunication) {
            startReady(comm: comm)
            while oldest < next, let r = requests[oldest], comm.test(r) { oldest += 1 }
        }
    }

    private func startReady(comm: Communicator) {
        while next < ranges.count && pending[next] <= 0 {
            let r = ranges[next]
            let k = next
            requests[next] = Trace.span("gradient bucket", name: "gradient bucket \(k) (\(r.count) floats)") {
                comm.startAllreduceSum(UnsafeMutableBufferPointer(start: store.grads + r.lowerBound, count: r.count))
            }
            next += 1
        }
    }

    /// After backward: start any bucket not started yet (none, when every
    /// layer reported), then wait for all, in order.
    func finish(comm: Communicator) {
        for k in next..<ranges.count { pending[k] = 0 }
        startReady(comm: comm)
        for r in requests { if let r { comm.wait(r) } }
    }
}
