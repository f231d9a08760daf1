// Plain-C wrappers over the few MPI calls SwiftSpeed uses: MPI's handles are macros Swift cannot import.
// Invariant: this header never includes mpi.h; every collective takes a deadline and returns
// SS_MPI_TIMEOUT instead of blocking forever when a peer never arrives.
#ifndef CSPEEDMPI_H
#define CSPEEDMPI_H

enum { SS_MPI_OK = 0, SS_MPI_TIMEOUT = -1, SS_MPI_ERROR = -2 };
enum { SS_MPI_FLOAT = 0, SS_MPI_DOUBLE = 1, SS_MPI_INT32 = 2, SS_MPI_INT64 = 3, SS_MPI_UINT16 = 4, SS_MPI_BYTE = 5 };
enum { SS_MPI_SUM = 0, SS_MPI_MAX = 1, SS_MPI_MIN = 2 };

/// Initialises MPI (thread level FUNNELED) once; fills rank and size. Returns SS_MPI_OK or an MPI error code.
int ss_mpi_init(int *rank, int *size);
int ss_mpi_finalize(void);
/// Aborts every rank of the job with `code`.
void ss_mpi_abort(int code);
/// Writes MPI's description of `code` into `buffer` (NUL-terminated).
void ss_mpi_error_string(int code, char *buffer, int length);

/// In place when `send` is NULL. `timeout` is in seconds (<= 0: wait forever).
int ss_mpi_allreduce(const void *send, void *recv, long count, int dtype, int op, double timeout);
/// `send` holds size * recvcount elements; rank r receives block r reduced.
int ss_mpi_reduce_scatter_block(const void *send, void *recv, long recvcount, int dtype, int op, double timeout);
/// Every rank contributes `sendcount` elements; `recv` holds size * sendcount.
int ss_mpi_allgather(const void *send, void *recv, long sendcount, int dtype, double timeout);
int ss_mpi_bcast(void *buffer, long count, int dtype, int root, double timeout);
int ss_mpi_send(const void *buffer, long count, int dtype, int dest, int tag, double timeout);
int ss_mpi_recv(void *buffer, long count, int dtype, int source, int tag, double timeout);
int ss_mpi_barrier(double timeout);

#endif
