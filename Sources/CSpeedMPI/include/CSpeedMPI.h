// Plain-C wrappers over the few MPI calls SwiftSpeed uses: MPI's handles are macros Swift cannot import.
// Invariant: this header never includes mpi.h; every collective takes a deadline and returns
// SS_MPI_TIMEOUT instead of blocking forever when a peer never arrives. Communicators are small
// integer handles: 0 is MPI_COMM_WORLD, ss_mpi_comm_dup and ss_mpi_comm_split hand out the others.
#ifndef CSPEEDMPI_H
#define CSPEEDMPI_H

enum { SS_MPI_OK = 0, SS_MPI_TIMEOUT = -1, SS_MPI_ERROR = -2 };
enum { SS_MPI_FLOAT = 0, SS_MPI_DOUBLE = 1, SS_MPI_INT32 = 2, SS_MPI_INT64 = 3, SS_MPI_UINT16 = 4, SS_MPI_BYTE = 5 };
enum { SS_MPI_SUM = 0, SS_MPI_MAX = 1, SS_MPI_MIN = 2 };

/// Initialises MPI (asking for MPI_THREAD_MULTIPLE) once; fills rank, size and whether several
/// threads may call MPI at once (each on its own communicator). Returns SS_MPI_OK or an MPI error code.
int ss_mpi_init(int *rank, int *size, int *thread_multiple);
int ss_mpi_finalize(void);
/// Writes MPI's library version string (MPI_Get_library_version, callable before MPI_Init) into `buf`,
/// NUL-terminated and truncated to `len`; returns SS_MPI_OK or an MPI error code.
int ss_mpi_library_version(char *buf, int len);
/// Aborts every rank of the job with `code`.
void ss_mpi_abort(int code);
/// Writes MPI's description of `code` into `buffer` (NUL-terminated).
void ss_mpi_error_string(int code, char *buffer, int length);
/// After a collective returned SS_MPI_TIMEOUT on this thread: which ranks never arrived ("rank(s) [1] did not
/// arrive"), from the arrival notices peers send once they have waited a second. Returns the text's length.
int ss_mpi_timeout_detail(char *buffer, int length);
/// Duplicates communicator `comm` (collective); writes the new handle into `out`.
int ss_mpi_comm_dup(int comm, int *out);
/// Splits communicator `comm` (collective, MPI_Comm_split): ranks with the same `color` (>= 0) form a new
/// communicator, ordered by `key` then old rank; writes its handle and this rank's rank and size in it.
int ss_mpi_comm_split(int comm, int color, int key, int *out, int *rank, int *size);
/// Frees a handle from ss_mpi_comm_dup or ss_mpi_comm_split (collective); its slot is reused.
int ss_mpi_comm_free(int comm);

/// In place when `send` is NULL. `timeout` is in seconds (<= 0: wait forever).
int ss_mpi_allreduce(int comm, const void *send, void *recv, long count, int dtype, int op, double timeout);
/// MPI_Allreduce itself, in place and blocking: the anchor `swiftspeed bench collectives` compares with.
int ss_mpi_allreduce_blocking(int comm, void *buffer, long count, int dtype, int op);
/// `send` holds sum(counts) elements in rank order; rank r receives its counts[r] elements reduced.
int ss_mpi_reduce_scatter(int comm, const void *send, void *recv, const long *counts, int dtype, int op, double timeout);
/// Rank r contributes counts[r] elements; `recv` holds them all back to back in rank order.
/// In place when `send` is NULL (this rank's block already sits at its place in `recv`).
int ss_mpi_allgatherv(int comm, const void *send, void *recv, const long *counts, int dtype, double timeout);
int ss_mpi_bcast(int comm, void *buffer, long count, int dtype, int root, double timeout);
int ss_mpi_send(int comm, const void *buffer, long count, int dtype, int dest, int tag, double timeout);
int ss_mpi_recv(int comm, void *buffer, long count, int dtype, int source, int tag, double timeout);
int ss_mpi_barrier(int comm, double timeout);

#endif
