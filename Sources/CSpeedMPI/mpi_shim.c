// Wrappers over OpenMPI: non-blocking collectives polled against a deadline (see CSpeedMPI.h).
#include "CSpeedMPI.h"
#include <mpi.h>
#include <string.h>
#include <time.h>

static MPI_Datatype dtype_of(int d) {
    switch (d) {
    case SS_MPI_FLOAT: return MPI_FLOAT;
    case SS_MPI_DOUBLE: return MPI_DOUBLE;
    case SS_MPI_INT32: return MPI_INT32_T;
    case SS_MPI_INT64: return MPI_INT64_T;
    case SS_MPI_UINT16: return MPI_UINT16_T;
    default: return MPI_BYTE;
    }
}

static MPI_Op op_of(int o) {
    switch (o) {
    case SS_MPI_MAX: return MPI_MAX;
    case SS_MPI_MIN: return MPI_MIN;
    default: return MPI_SUM;
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/// Polls `request` until it completes or `timeout` seconds pass (sleeping briefly between polls).
static int wait_for(MPI_Request *request, double timeout) {
    double deadline = timeout > 0 ? now() + timeout : 0;
    int done = 0;
    long spins = 0;
    while (!done) {
        int rc = MPI_Test(request, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return rc;
        if (done) break;
        if (deadline > 0 && now() > deadline) return SS_MPI_TIMEOUT;
        if (++spins > 1000) {
            struct timespec pause = {0, 50000};   // 50 µs once the operation is clearly not instant
            nanosleep(&pause, NULL);
        }
    }
    return SS_MPI_OK;
}

int ss_mpi_init(int *rank, int *size) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        int provided = 0;
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) return rc;
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return SS_MPI_OK;
}

int ss_mpi_finalize(void) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    return finalized ? SS_MPI_OK : MPI_Finalize();
}

void ss_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

void ss_mpi_error_string(int code, char *buffer, int length) {
    if (code == SS_MPI_TIMEOUT) { strncpy(buffer, "timed out waiting for the other ranks", length - 1); buffer[length - 1] = 0; return; }
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(code, text, &n) != MPI_SUCCESS) { strncpy(buffer, "unknown MPI error", length - 1); buffer[length - 1] = 0; return; }
    strncpy(buffer, text, length - 1);
    buffer[length - 1] = 0;
}

int ss_mpi_allreduce(const void *send, void *recv, long count, int dtype, int op, double timeout) {
    MPI_Request r;
    int rc = MPI_Iallreduce(send ? send : MPI_IN_PLACE, recv, (int)count, dtype_of(dtype), op_of(op), MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout) : rc;
}

int ss_mpi_reduce_scatter_block(const void *send, void *recv, long recvcount, int dtype, int op, double timeout) {
    MPI_Request r;
    int rc = MPI_Ireduce_scatter_block(send, recv, (int)recvcount, dtype_of(dtype), op_of(op), MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout) : rc;
}

int ss_mpi_allgather(const void *send, void *recv, long sendcount, int dtype, double timeout) {
    MPI_Request r;
    int rc = MPI_Iallgather(send ? send : MPI_IN_PLACE, (int)sendcount, dtype_of(dtype), recv, (int)sendcount,
                            dtype_of(dtype), MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout) : rc;
}

int ss_mpi_bcast(void *buffer, long count, int dtype, int root, double timeout) {
    MPI_Request r;
    int rc = MPI_Ibcast(buffer, (int)count, dtype_of(dtype), root, MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout) : rc;
}

int ss_mpi_send(const void *buffer, long count, int dtype, int dest, int tag, double timeout) {
    MPI_Request r;
    int rc = MPI_Isend(buffer, (int)count, dtype_of(dtype), dest, tag, MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout) : rc;
}

int ss_mpi_recv(void *buffer, long count, int dtype, int source, int tag, double timeout) {
    MPI_Request r;
    int rc = MPI_Irecv(buffer, (int)count, dtype_of(dtype), source, tag, MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout) : rc;
}

int ss_mpi_barrier(double timeout) {
    MPI_Request r;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout) : rc;
}
