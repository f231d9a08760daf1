// Wrappers over OpenMPI: non-blocking collectives polled against a deadline (see CSpeedMPI.h).
#include "CSpeedMPI.h"
#include <mpi.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <time.h>

enum { MAX_COMMS = 64 };
// Handle -> communicator. Slot 0 is the world; written only by ss_mpi_init, ss_mpi_comm_dup and ss_mpi_comm_split,
// which every rank calls collectively from its main thread before any helper thread uses a handle.
static MPI_Comm comms[MAX_COMMS];
static int comm_count = 0;

static MPI_Comm comm_of(int c) { return (c > 0 && c < comm_count && comms[c] != MPI_COMM_NULL) ? comms[c] : MPI_COMM_WORLD; }

// The arrival census, per handle: a duplicate communicator on which a rank that has waited a second for a
// collective tells every peer "I reached collective number seq", so a rank that times out can name the ranks
// that never arrived. Each handle's state is touched only by the one thread that uses the handle.
static MPI_Comm census[MAX_COMMS];
static long sequence[MAX_COMMS];      // collectives started on the handle (the same on every rank)
static long announced[MAX_COMMS];     // the value last sent (the send buffer; only ever grows)
static long *seen[MAX_COMMS];         // per peer: the highest collective it said it reached
static __thread char timeout_detail[512];

static void census_open(int c, MPI_Comm comm) {
    int size = 0;
    MPI_Comm_size(comm, &size);
    census[c] = MPI_COMM_NULL;
    if (MPI_Comm_dup(comm, &census[c]) == MPI_SUCCESS) MPI_Comm_set_errhandler(census[c], MPI_ERRORS_RETURN);
    sequence[c] = 0;
    announced[c] = 0;
    free(seen[c]);
    seen[c] = calloc((size_t)size, sizeof(long));
}

static void census_close(int c) {
    if (census[c] != MPI_COMM_NULL) MPI_Comm_free(&census[c]);
    census[c] = MPI_COMM_NULL;
    free(seen[c]);
    seen[c] = NULL;
}

/// Reads every arrival notice that has come in on handle `c`.
static void census_drain(int c) {
    if (!seen[c] || census[c] == MPI_COMM_NULL) return;
    for (;;) {
        int flag = 0;
        MPI_Status status;
        if (MPI_Iprobe(MPI_ANY_SOURCE, 0, census[c], &flag, &status) != MPI_SUCCESS || !flag) return;
        long value = 0;
        MPI_Recv(&value, 1, MPI_LONG, status.MPI_SOURCE, 0, census[c], MPI_STATUS_IGNORE);
        if (value > seen[c][status.MPI_SOURCE]) seen[c][status.MPI_SOURCE] = value;
    }
}

/// Tells every peer of handle `c` that this rank reached collective `sequence[c]` (tiny eager messages).
static void census_announce(int c) {
    if (!seen[c] || census[c] == MPI_COMM_NULL || announced[c] == sequence[c]) return;
    int size = 0, rank = 0;
    MPI_Comm_size(census[c], &size);
    MPI_Comm_rank(census[c], &rank);
    announced[c] = sequence[c];
    for (int r = 0; r < size; r++) {
        if (r == rank) continue;
        MPI_Request request;
        if (MPI_Isend(&announced[c], 1, MPI_LONG, r, 0, census[c], &request) == MPI_SUCCESS) MPI_Request_free(&request);
    }
}

/// After a timeout on handle `c`: "rank(s) [a, b] did not arrive" into timeout_detail.
static void census_report(int c) {
    timeout_detail[0] = 0;
    if (!seen[c] || census[c] == MPI_COMM_NULL) return;
    census_drain(c);
    int size = 0, rank = 0;
    MPI_Comm_size(census[c], &size);
    MPI_Comm_rank(census[c], &rank);
    size_t used = (size_t)snprintf(timeout_detail, sizeof timeout_detail, "rank(s) [");
    int missing = 0;
    for (int r = 0; r < size && used < sizeof timeout_detail - 16; r++) {
        if (r == rank || seen[c][r] >= sequence[c]) continue;
        used += (size_t)snprintf(timeout_detail + used, sizeof timeout_detail - used, "%s%d", missing ? ", " : "", r);
        missing++;
    }
    if (missing) snprintf(timeout_detail + used, sizeof timeout_detail - used, "] did not arrive");
    else snprintf(timeout_detail, sizeof timeout_detail, "every rank arrived (a rank called a different collective or the network stalled)");
}

int ss_mpi_timeout_detail(char *buffer, int length) {
    if (!buffer || length <= 0) return 0;
    snprintf(buffer, (size_t)length, "%s", timeout_detail);
    return (int)strlen(buffer);
}

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

/// Starts collective number sequence+1 on handle `comm`; returns the handle for wait_for.
static int collective(int comm) {
    int c = (comm > 0 && comm < comm_count && comms[comm] != MPI_COMM_NULL) ? comm : 0;
    sequence[c]++;
    return c;
}

/// Polls `request` (MPI_Test drives OpenMPI's progress) until it completes or the deadline passes. Waiting backs
/// off so a rank blocked on a slow or hung peer does not burn a core: it spins for the first 2 ms (small
/// collectives finish there), then sleeps 50 us between tests, and 1 ms once it has waited a second. A
/// collective (`comm` >= 0) that has waited a second announces its arrival to the census.
static int wait_for(MPI_Request *request, double timeout, int comm) {
    double start = now();
    double deadline = timeout > 0 ? start + timeout : 0;
    int done = 0;
    long spins = 0;
    while (!done) {
        int rc = MPI_Test(request, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return rc;
        if (done) break;
        double t = now();
        if (deadline > 0 && t > deadline) {
            if (comm >= 0) census_report(comm); else timeout_detail[0] = 0;
            return SS_MPI_TIMEOUT;
        }
        double waited = t - start;
        if (comm >= 0 && waited > 1.0) {
            census_announce(comm);
            census_drain(comm);
        }
        if (waited < 0.002) {
            if (++spins > 1000) sched_yield();
        } else {
            struct timespec pause = {0, waited < 1.0 ? 50000 : 1000000};
            nanosleep(&pause, NULL);
        }
    }
    return SS_MPI_OK;
}

int ss_mpi_library_version(char *buf, int len) {
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    int rc = MPI_Get_library_version(version, &length);
    if (buf && len > 0) {
        int n = rc == MPI_SUCCESS ? (length < len - 1 ? length : len - 1) : 0;
        memcpy(buf, version, (size_t)n);
        buf[n] = 0;
    }
    return rc == MPI_SUCCESS ? SS_MPI_OK : rc;
}

int ss_mpi_init(int *rank, int *size, int *thread_multiple) {
    int initialized = 0, provided = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        // libnbc's default MPI_Iallreduce algorithm loses 3-10x to MPI_Allreduce from 4 MiB up on
        // shared memory; the ring matches it (BENCHMARKS.md B5). A user's own setting wins.
        setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "ring", 0);
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
        if (rc != MPI_SUCCESS) return rc;
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        comms[0] = MPI_COMM_WORLD;
        for (int i = 1; i < MAX_COMMS; i++) comms[i] = MPI_COMM_NULL;
        comm_count = 1;
        census_open(0, MPI_COMM_WORLD);
    } else {
        MPI_Query_thread(&provided);
    }
    *thread_multiple = provided >= MPI_THREAD_MULTIPLE;
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
    if (code == SS_MPI_ERROR) { strncpy(buffer, "too many communicators or counts too large for MPI", length - 1); buffer[length - 1] = 0; return; }
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(code, text, &n) != MPI_SUCCESS) { strncpy(buffer, "unknown MPI error", length - 1); buffer[length - 1] = 0; return; }
    strncpy(buffer, text, length - 1);
    buffer[length - 1] = 0;
}

/// Stores a fresh communicator in a free slot; returns its handle, or SS_MPI_ERROR (and frees it) when full.
static int store(MPI_Comm fresh, int *out) {
    int slot = 1;
    while (slot < comm_count && comms[slot] != MPI_COMM_NULL) slot++;
    if (slot >= MAX_COMMS) { MPI_Comm_free(&fresh); return SS_MPI_ERROR; }
    MPI_Comm_set_errhandler(fresh, MPI_ERRORS_RETURN);
    comms[slot] = fresh;
    census_open(slot, fresh);
    if (slot == comm_count) comm_count++;
    *out = slot;
    return SS_MPI_OK;
}

int ss_mpi_comm_dup(int comm, int *out) {
    MPI_Comm fresh;
    int rc = MPI_Comm_dup(comm_of(comm), &fresh);
    return rc == MPI_SUCCESS ? store(fresh, out) : rc;
}

int ss_mpi_comm_split(int comm, int color, int key, int *out, int *rank, int *size) {
    MPI_Comm fresh;
    int rc = MPI_Comm_split(comm_of(comm), color, key, &fresh);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm_rank(fresh, rank);
    MPI_Comm_size(fresh, size);
    return store(fresh, out);
}

int ss_mpi_comm_free(int comm) {
    if (comm <= 0 || comm >= comm_count || comms[comm] == MPI_COMM_NULL) return SS_MPI_OK;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) census_close(comm);
    int rc = finalized ? MPI_SUCCESS : MPI_Comm_free(&comms[comm]);
    comms[comm] = MPI_COMM_NULL;
    return rc;
}

int ss_mpi_allreduce(int comm, const void *send, void *recv, long count, int dtype, int op, double timeout) {
    MPI_Request r;
    int rc = MPI_Iallreduce(send ? send : MPI_IN_PLACE, recv, (int)count, dtype_of(dtype), op_of(op), comm_of(comm), &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout, collective(comm)) : rc;
}

int ss_mpi_allreduce_blocking(int comm, void *buffer, long count, int dtype, int op) {
    return MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, dtype_of(dtype), op_of(op), comm_of(comm));
}

/// int copies of `counts` (MPI's count type) and their running offsets; NULL when they do not fit.
static int *int_counts(const long *counts, int n, int **displs) {
    int *c = malloc(sizeof(int) * (size_t)n * 2);
    if (!c) return NULL;
    long running = 0;
    for (int i = 0; i < n; i++) {
        if (counts[i] < 0 || counts[i] > 0x7fffffffL || running > 0x7fffffffL) { free(c); return NULL; }
        c[i] = (int)counts[i];
        c[n + i] = (int)running;
        running += counts[i];
    }
    *displs = c + n;
    return c;
}

int ss_mpi_reduce_scatter(int comm, const void *send, void *recv, const long *counts, int dtype, int op, double timeout) {
    int size = 0, *displs = NULL;
    MPI_Comm_size(comm_of(comm), &size);
    int *c = int_counts(counts, size, &displs);
    if (!c) return SS_MPI_ERROR;
    MPI_Request r;
    int rc = MPI_Ireduce_scatter(send, recv, c, dtype_of(dtype), op_of(op), comm_of(comm), &r);
    if (rc == MPI_SUCCESS) rc = wait_for(&r, timeout, collective(comm));
    free(c);
    return rc;
}

int ss_mpi_allgatherv(int comm, const void *send, void *recv, const long *counts, int dtype, double timeout) {
    int size = 0, rank = 0, *displs = NULL;
    MPI_Comm_size(comm_of(comm), &size);
    MPI_Comm_rank(comm_of(comm), &rank);
    int *c = int_counts(counts, size, &displs);
    if (!c) return SS_MPI_ERROR;
    MPI_Request r;
    int rc = MPI_Iallgatherv(send ? send : MPI_IN_PLACE, c[rank], dtype_of(dtype), recv, c, displs, dtype_of(dtype),
                             comm_of(comm), &r);
    if (rc == MPI_SUCCESS) rc = wait_for(&r, timeout, collective(comm));
    free(c);
    return rc;
}

int ss_mpi_bcast(int comm, void *buffer, long count, int dtype, int root, double timeout) {
    MPI_Request r;
    int rc = MPI_Ibcast(buffer, (int)count, dtype_of(dtype), root, comm_of(comm), &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout, collective(comm)) : rc;
}

int ss_mpi_send(int comm, const void *buffer, long count, int dtype, int dest, int tag, double timeout) {
    MPI_Request r;
    int rc = MPI_Isend(buffer, (int)count, dtype_of(dtype), dest, tag, comm_of(comm), &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout, -1) : rc;
}

int ss_mpi_recv(int comm, void *buffer, long count, int dtype, int source, int tag, double timeout) {
    MPI_Request r;
    int rc = MPI_Irecv(buffer, (int)count, dtype_of(dtype), source, tag, comm_of(comm), &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout, -1) : rc;
}

int ss_mpi_barrier(int comm, double timeout) {
    MPI_Request r;
    int rc = MPI_Ibarrier(comm_of(comm), &r);
    return rc == MPI_SUCCESS ? wait_for(&r, timeout, collective(comm)) : rc;
}
