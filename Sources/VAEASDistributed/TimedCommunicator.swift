import VAEASConfig
import VAEASCore
import Dispatch

/// A `Communicator` that forwards every call and adds up the seconds spent
/// in collectives: how `bench` separates communication from computation in
/// code (the partitioned softmax) that interleaves the two.
public final class TimedCommunicator: Communicator {
    public let base: Communicator
    public private(set) var seconds = 0.0

    public init(_ base: Communicator) { self.base = base }

    public var rank: Int { base.rank }
    public var size: Int { base.size }

    @inline(__always)
    private func timed(_ body: () -> Void) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    }

    public func allreduceSum(_ b: UnsafeMutableBufferPointer<Float>) { timed { base.allreduceSum(b) } }
    public func allreduceSum(_ b: UnsafeMutableBufferPointer<Double>) { timed { base.allreduceSum(b) } }
    public func allreduceMax(_ b: UnsafeMutableBufferPointer<Float>) { timed { base.allreduceMax(b) } }
    public func allreduceMax(_ b: UnsafeMutableBufferPointer<Double>) { timed { base.allreduceMax(b) } }
    public func allgatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>, counts: RankCounts) {
        timed { base.allgatherv(send: send, receive: receive, counts: counts) }
    }
    public func reduceScatterv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>, counts: RankCounts) {
        timed { base.reduceScatterv(send: send, receive: receive, counts: counts) }
    }
    public func gatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>, counts: RankCounts, root: Int) {
        timed { base.gatherv(send: send, receive: receive, counts: counts, root: root) }
    }
    public func broadcast(_ b: UnsafeMutableRawBufferPointer, root: Int) { timed { base.broadcast(b, root: root) } }
    public func barrier() { timed { base.barrier() } }
}
