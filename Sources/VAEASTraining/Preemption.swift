import VAEASDistributed
import Foundation

/// SIGTERM, SIGINT and SIGUSR1 (what `scancel`, Ctrl-C, SLURM's
/// `--signal=USR1@T` and Open MPI's `mpirun` forwarding deliver) ask for a
/// clean stop: the handler only records the signal; the training loop reads
/// it at the next step boundary, the ranks agree collectively (with the step's
/// own allreduce), write a checkpoint and exit with `Preemption.exitStatus`.
/// A second signal exits at once (the last checkpoint is never half-written:
/// checkpoints are renamed into place only when complete).
public enum Preemption {
    /// The process exit status after a clean stop on a signal: 75, EX_TEMPFAIL
    /// ("temporary failure, try again"): the run is resumable.
    public static let exitStatus: Int32 = 75

    nonisolated(unsafe) static var received: Int32 = 0

    /// The signal received, if any (0 = none).
    public static var signal: Int32 { received }

    /// Installs the handlers (once per process).
    public static func install() {
        for sig in [SIGTERM, SIGINT, SIGUSR1] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                if Preemption.received != 0 { _exit(128 + sig) }
                Preemption.received = sig
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(sig, &action, nil)
        }
    }

    public static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(sig)"
        }
    }
}

/// The run stopped on a signal after writing a checkpoint.
public struct PreemptedError: CollectiveError, CustomStringConvertible {
    public let signal: Int32
    public let epoch: Int
    public let step: Int
    public let directory: String
    public var description: String {
        let why = signal != 0 ? "\(Preemption.name(signal)) received" : "a stop signal reached another rank"
        return "preempted at epoch \(epoch) step \(step) (\(why)); checkpoint written; resume with: vaeas-dist train --resume \(directory.shellQuoted)"
    }
}
