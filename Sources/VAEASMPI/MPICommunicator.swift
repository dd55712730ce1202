import VAEASDistributed
import CMPI
import Foundation

/// `Communicator` over MPI_COMM_WORLD, used when a launcher (`mpirun`, `srun`,
/// PMI/PMIx) started the process (`LauncherEnvironment.isLaunched`). A plain
/// `vaeas-dist …` runs on `LocalCommunicator` instead and never calls MPI_Init;
/// `VAEAS_MPI=1` makes it an MPI singleton of one rank here.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm

    /// MPI_Init; call once per process, and `finalize()` before exit.
    public init() throws {
        var provided: Int32 = 0
        let rc = MPI_Init_thread(nil, nil, vaeas_mpi_thread_funneled(), &provided)
        guard rc == vaeas_mpi_success() else { throw MPIError(call: "MPI_Init_thread", code: rc) }
        comm = vaeas_mpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
    }

    public func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }

    /// Ends every rank at once (after an error on one rank that the others cannot see).
    public func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }

    @inline(__always)
    private func check(_ rc: Int32, _ call: String) {
        // MPI's default error handler (MPI_ERRORS_ARE_FATAL) aborts before we
        // see a failure; this guards a changed handler.
        if rc != vaeas_mpi_success() { fatalError("\(call) failed with code \(rc)") }
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard size > 1, !buffer.isEmpty else { return }
        check(MPI_Allreduce(vaeas_mpi_in_place(), buffer.baseAddress, Int32(buffer.count),
                            vaeas_mpi_float(), vaeas_mpi_sum(), comm), "MPI_Allreduce")
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard size > 1, !buffer.isEmpty else { return }
        check(MPI_Allreduce(vaeas_mpi_in_place(), buffer.baseAddress, Int32(buffer.count),
                            vaeas_mpi_double(), vaeas_mpi_sum(), comm), "MPI_Allreduce")
    }

    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard size > 1, !buffer.isEmpty else { return }
        check(MPI_Allreduce(vaeas_mpi_in_place(), buffer.baseAddress, Int32(buffer.count),
                            vaeas_mpi_float(), vaeas_mpi_max(), comm), "MPI_Allreduce")
    }

    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard size > 1, !buffer.isEmpty else { return }
        check(MPI_Allreduce(vaeas_mpi_in_place(), buffer.baseAddress, Int32(buffer.count),
                            vaeas_mpi_double(), vaeas_mpi_max(), comm), "MPI_Allreduce")
    }

    public func allgatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>,
                           counts: RankCounts) {
        precondition(counts.counts.count == size && receive.count >= counts.total)
        counts.counts.withUnsafeBufferPointer { c in
            counts.displacements.withUnsafeBufferPointer { d in
                check(MPI_Allgatherv(send.baseAddress, c[rank], vaeas_mpi_float(),
                                     receive.baseAddress, c.baseAddress, d.baseAddress,
                                     vaeas_mpi_float(), comm), "MPI_Allgatherv")
            }
        }
    }

    public func reduceScatterv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>,
                               counts: RankCounts) {
        precondition(counts.counts.count == size && send.count >= counts.total)
        counts.counts.withUnsafeBufferPointer { c in
            check(MPI_Reduce_scatter(send.baseAddress, receive.baseAddress, c.baseAddress,
                                     vaeas_mpi_float(), vaeas_mpi_sum(), comm), "MPI_Reduce_scatter")
        }
    }

    public func gatherv(send: UnsafeBufferPointer<Float>, receive: UnsafeMutableBufferPointer<Float>,
                        counts: RankCounts, root: Int) {
        precondition(counts.counts.count == size)
        precondition(rank != root || receive.count >= counts.total)
        counts.counts.withUnsafeBufferPointer { c in
            counts.displacements.withUnsafeBufferPointer { d in
                check(MPI_Gatherv(send.baseAddress, c[rank], vaeas_mpi_float(),
                                  receive.baseAddress, c.baseAddress, d.baseAddress,
                                  vaeas_mpi_float(), Int32(root), comm), "MPI_Gatherv")
            }
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        guard size > 1, !buffer.isEmpty else { return }
        check(MPI_Bcast(buffer.baseAddress, Int32(buffer.count), vaeas_mpi_byte(), Int32(root), comm), "MPI_Bcast")
    }

    public func barrier() { check(MPI_Barrier(comm), "MPI_Barrier") }

    public func startAllreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) -> CollectiveRequest {
        guard size > 1, !buffer.isEmpty else { return CollectiveRequest(handle: nil, isComplete: true, count: buffer.count) }
        var request: MPI_Request? = nil
        check(MPI_Iallreduce(vaeas_mpi_in_place(), buffer.baseAddress, Int32(buffer.count), vaeas_mpi_float(),
                             vaeas_mpi_sum(), comm, &request), "MPI_Iallreduce")
        return CollectiveRequest(handle: request, isComplete: false, count: buffer.count)
    }

    public func test(_ request: CollectiveRequest) -> Bool {
        if request.isComplete { return true }
        var request_: MPI_Request? = request.handle
        var flag: Int32 = 0
        check(MPI_Test(&request_, &flag, vaeas_mpi_status_ignore()), "MPI_Test")
        if flag != 0 { request.isComplete = true; request.handle = nil }
        return flag != 0
    }

    public func wait(_ request: CollectiveRequest) {
        if request.isComplete { return }
        var request_: MPI_Request? = request.handle
        check(MPI_Wait(&request_, vaeas_mpi_status_ignore()), "MPI_Wait")
        request.isComplete = true
        request.handle = nil
    }
}

public struct MPIError: Error, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public var description: String { "\(call) failed with MPI error code \(code)" }
}
