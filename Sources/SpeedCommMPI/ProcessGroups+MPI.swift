// The process group a launched job runs in: MPI under a launcher, else one process.
// Invariant: the launcher is recognised by its environment variables alone, before MPI is initialised.

import SpeedComm
import SpeedCore

extension ProcessGroups {
    /// MPI when the process was started by `mpirun` (or `swiftspeed launch`), else one process.
    ///
    /// ```swift
    /// let group = try ProcessGroups.fromEnvironment(timeout: 600)
    /// try group.allReduce(grads, op: .avg)
    /// ```
    /// - Parameter timeout: seconds a collective waits (DeepSpeed's default is 30 minutes).
    public static func fromEnvironment(timeout: Double = 1800) throws -> any ProcessGroup {
        ProcessEnvironment.isUnderMPI ? try MPIProcessGroup(timeout: timeout) : SingleProcessGroup(timeout: timeout)
    }

    /// The transport's own blocking all-reduce (sum, in place) — OpenMPI's `MPI_Allreduce`, the anchor
    /// `swiftspeed bench collectives` compares against; false (nothing done) for a group that is not MPI.
    public static func transportAllReduce(_ tensor: Tensor, in group: any ProcessGroup) throws -> Bool {
        guard let mpi = group as? MPIProcessGroup else { return false }
        try mpi.referenceAllReduce(tensor)
        return true
    }
}
