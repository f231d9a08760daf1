// Upgrading a launched job's group to NCCL for GPU tensors.
// Invariant: only a multi-process MPI group is upgraded; everything else comes back unchanged.

import SpeedComm
import SpeedCommMPI
import SpeedCore

extension ProcessGroups {
    /// `group` with NCCL collectives for tensors on `device` when it is a GPU and `group` spans
    /// processes over MPI; `group` itself otherwise. Throws when NCCL cannot start (keep `group`:
    /// MPI then stages GPU tensors through host memory).
    ///
    /// ```swift
    /// var group = try ProcessGroups.fromEnvironment()
    /// group = (try? ProcessGroups.accelerated(group, for: .cuda(localRank))) ?? group
    /// ```
    public static func accelerated(_ group: any ProcessGroup, for device: Device) throws -> any ProcessGroup {
        guard device.isCUDA, group.size > 1, let mpi = group as? MPIProcessGroup else { return group }
        return try NCCLProcessGroup(mpi: mpi, device: device)
    }
}
