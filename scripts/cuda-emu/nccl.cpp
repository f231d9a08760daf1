// libnccl.so.2 for machines without GPUs: the NCCL calls SwiftSpeed resolves (CSpeedCUDA.h) as blocking MPI
// collectives between the processes mpirun started, one emulated GPU each.
// Invariant: a communicator is the split of MPI_COMM_WORLD whose processes brought the same ncclUniqueId (every process
// of the job initialises a communicator together) and every collective has finished when the call returns, so groups and streams need no bookkeeping; 16-bit floats are reduced in fp32, rounded once.
#include "CSpeedCUDA.h"

#include <dlfcn.h>
#define OMPI_SKIP_MPICXX 1   // the C API only
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#define EXPORT extern "C" __attribute__((visibility("default")))

// From the emulator's libcuda.so.1 (this library links it): buffers must be device memory, as for real NCCL.
extern "C" void ssemu_device_lock(void);
extern "C" void ssemu_device_unlock(void);
extern "C" int ssemu_check_range(const void* p, size_t bytes, const char* call, const char* what);

namespace {

enum { kSuccess = 0, kSystemError = 2, kInternalError = 3, kInvalidArgument = 4, kInvalidUsage = 5 };

struct Comm { int rank, size; MPI_Comm mpi; };

SSNCCLresult fail(SSNCCLresult code, const char* call, const char* format, ...) __attribute__((format(printf, 3, 4)));
SSNCCLresult fail(SSNCCLresult code, const char* call, const char* format, ...) {
    const char* quiet = getenv("SSEMU_QUIET");
    if (!(quiet && *quiet && strcmp(quiet, "0") != 0)) {
        char text[512];
        va_list args;
        va_start(args, format);
        vsnprintf(text, sizeof text, format, args);
        va_end(args);
        fprintf(stderr, "ssemu: %s: %s\n", call, text);
    }
    return code;
}

/// MPI_Init on first use. OpenMPI loads its components with dlopen and they need libmpi's symbols in the global
/// scope, which a library dlopen'ed RTLD_LOCAL (as SwiftSpeed opens this one) does not give them: promote it first.
bool ensure_mpi(const char* call) {
    int ready = 0;
    MPI_Initialized(&ready);
    if (ready) return true;
    Dl_info info;
    if (dladdr((void*)&MPI_Init, &info) && info.dli_fname) dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        fail(kSystemError, call, "MPI_Init failed");
        return false;
    }
    atexit([] {   // mpirun treats a rank that exits without MPI_Finalize as failed
        int done = 0;
        MPI_Finalized(&done);
        if (!done) MPI_Finalize();
    });
    return true;
}

size_t type_size(int dtype) {
    switch (dtype) {
    case SS_NCCL_INT8: case SS_NCCL_UINT8: return 1;
    case SS_NCCL_FLOAT16: case SS_NCCL_BFLOAT16: return 2;
    case SS_NCCL_INT32: case SS_NCCL_UINT32: case SS_NCCL_FLOAT32: return 4;
    case SS_NCCL_INT64: case SS_NCCL_UINT64: case SS_NCCL_FLOAT64: return 8;
    default: return 0;
    }
}

/// The MPI datatype a buffer is reduced in (16-bit floats travel as fp32).
MPI_Datatype mpi_type(int dtype) {
    switch (dtype) {
    case SS_NCCL_INT8: return MPI_INT8_T;
    case SS_NCCL_UINT8: return MPI_UINT8_T;
    case SS_NCCL_INT32: return MPI_INT32_T;
    case SS_NCCL_UINT32: return MPI_UINT32_T;
    case SS_NCCL_INT64: return MPI_INT64_T;
    case SS_NCCL_UINT64: return MPI_UINT64_T;
    case SS_NCCL_FLOAT64: return MPI_DOUBLE;
    default: return MPI_FLOAT;
    }
}

MPI_Op mpi_op(int op) {
    switch (op) {
    case SS_NCCL_PROD: return MPI_PROD;
    case SS_NCCL_MAX: return MPI_MAX;
    case SS_NCCL_MIN: return MPI_MIN;
    default: return MPI_SUM;   // SUM, and AVG (divided afterwards)
    }
}

bool half(int dtype) { return dtype == SS_NCCL_FLOAT16 || dtype == SS_NCCL_BFLOAT16; }

float half_to_float(uint16_t h, int dtype) {
    if (dtype == SS_NCCL_BFLOAT16) {
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    _Float16 v;
    memcpy(&v, &h, 2);
    return (float)v;
}
uint16_t float_to_half(float f, int dtype) {
    if (dtype == SS_NCCL_BFLOAT16) {
        uint32_t u;
        memcpy(&u, &f, 4);
        if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
        return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
    _Float16 v = (_Float16)f;
    uint16_t h;
    memcpy(&h, &v, 2);
    return h;
}

/// `count` elements of `data` in the type MPI reduces them in (a copy, widened for 16-bit floats).
std::vector<char> widen(const void* data, size_t count, int dtype) {
    if (!half(dtype)) return std::vector<char>((const char*)data, (const char*)data + count * type_size(dtype));
    std::vector<char> out(count * 4);
    for (size_t i = 0; i < count; ++i) {
        const float f = half_to_float(((const uint16_t*)data)[i], dtype);
        memcpy(out.data() + 4 * i, &f, 4);
    }
    return out;
}

/// Writes reduced values back in the NCCL type, dividing by the rank count first for AVG.
void narrow(const std::vector<char>& reduced, void* out, size_t count, int dtype, int op, int ranks) {
    for (size_t i = 0; i < count; ++i) {
        const char* v = reduced.data() + i * (half(dtype) ? 4 : type_size(dtype));
        switch (dtype) {
        case SS_NCCL_FLOAT16: case SS_NCCL_BFLOAT16: {
            float f;
            memcpy(&f, v, 4);
            if (op == SS_NCCL_AVG) f /= (float)ranks;
            ((uint16_t*)out)[i] = float_to_half(f, dtype);
            break;
        }
        case SS_NCCL_FLOAT32: {
            float f;
            memcpy(&f, v, 4);
            ((float*)out)[i] = op == SS_NCCL_AVG ? f / (float)ranks : f;
            break;
        }
        case SS_NCCL_FLOAT64: {
            double d;
            memcpy(&d, v, 8);
            ((double*)out)[i] = op == SS_NCCL_AVG ? d / ranks : d;
            break;
        }
        default: {
            const size_t e = type_size(dtype);
            if (op != SS_NCCL_AVG) { memcpy((char*)out + i * e, v, e); break; }
            int64_t x = 0;
            uint64_t u = 0;
            const bool is_signed = dtype == SS_NCCL_INT8 || dtype == SS_NCCL_INT32 || dtype == SS_NCCL_INT64;
            if (is_signed) { memcpy(&x, v, e); if (e < 8) x = (x << (64 - 8 * e)) >> (64 - 8 * e); x /= ranks; memcpy((char*)out + i * e, &x, e); }
            else { memcpy(&u, v, e); u /= (uint64_t)ranks; memcpy((char*)out + i * e, &u, e); }
        }
        }
    }
}

/// `count` elements, times the rank count when `per_rank`.
SSNCCLresult check_call(const char* call, SSNCCLcomm comm, int dtype, int op, bool has_op, size_t count, bool per_rank) {
    if (!comm) return fail(kInvalidArgument, call, "null communicator");
    if (per_rank) count *= (size_t)((const Comm*)comm)->size;
    if (count * 8 > (size_t)2147483647) return fail(kInvalidArgument, call, "%zu elements: too many for one MPI call", count);
    if (!type_size(dtype)) return fail(kInvalidArgument, call, "unknown ncclDataType_t %d", dtype);
    if (has_op && (op < SS_NCCL_SUM || op > SS_NCCL_AVG)) return fail(kInvalidArgument, call, "unknown ncclRedOp_t %d", op);
    return kSuccess;
}

/// Both buffers must be device memory, as on a GPU.
SSNCCLresult check_buffers(const char* call, const void* send, size_t send_bytes, const void* recv, size_t recv_bytes) {
    ssemu_device_lock();
    const bool ok = ssemu_check_range(send, send_bytes, call, "send buffer") &&
                    ssemu_check_range(recv, recv_bytes, call, "receive buffer");
    ssemu_device_unlock();
    return ok ? kSuccess : kInvalidArgument;
}

SSNCCLresult mpi(int rc, const char* call) {
    return rc == MPI_SUCCESS ? kSuccess : fail(kSystemError, call, "MPI error %d", rc);
}

}  // namespace

EXPORT SSNCCLresult ncclGetVersion(int* version) {
    if (!version) return kInvalidArgument;
    *version = 23203;
    return kSuccess;
}

EXPORT const char* ncclGetErrorString(SSNCCLresult result) {
    switch (result) {
    case 0: return "no error";
    case 1: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case 2: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case 3: return "internal error - please report this issue to the NCCL developers";
    case 4: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case 5: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case 6: return "remote process exited or there was a network error";
    case 7: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

EXPORT SSNCCLresult ncclGetUniqueId(SSNCCLUniqueId* id) {
    if (!id) return kInvalidArgument;
    FILE* random = fopen("/dev/urandom", "rb");
    const bool ok = random && fread(id->internal, 1, sizeof id->internal, random) == sizeof id->internal;
    if (random) fclose(random);
    return ok ? kSuccess : fail(kSystemError, "ncclGetUniqueId", "cannot read /dev/urandom");
}

EXPORT SSNCCLresult ncclCommInitRank(SSNCCLcomm* comm, int ranks, SSNCCLUniqueId id, int rank) {
    const char* call = "ncclCommInitRank";
    if (!comm || ranks < 1 || rank < 0 || rank >= ranks)
        return fail(kInvalidArgument, call, "rank %d of %d", rank, ranks);
    if (!ensure_mpi(call)) return kSystemError;
    int world_rank = 0, world_size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    // Every process of the job calls this together (SwiftSpeed's groups are splits of the world, made
    // collectively); the processes that bring the same id form one communicator, ordered by their NCCL rank.
    std::vector<char> all((size_t)world_size * sizeof id.internal);
    if (mpi(MPI_Allgather(id.internal, sizeof id.internal, MPI_BYTE, all.data(), sizeof id.internal, MPI_BYTE,
                          MPI_COMM_WORLD), call))
        return kSystemError;
    int color = world_rank;
    for (int r = 0; r < world_size; ++r)
        if (!memcmp(all.data() + (size_t)r * sizeof id.internal, id.internal, sizeof id.internal)) { color = r; break; }
    MPI_Comm part = MPI_COMM_NULL;
    if (mpi(MPI_Comm_split(MPI_COMM_WORLD, color, rank, &part), call)) return kSystemError;
    int part_rank = 0, part_size = 0;
    MPI_Comm_rank(part, &part_rank);
    MPI_Comm_size(part, &part_size);
    if (part_size != ranks || part_rank != rank) {
        MPI_Comm_free(&part);
        return fail(kInvalidUsage, call,
                    "rank %d of %d, but %d processes brought this ncclUniqueId (this one as rank %d): every rank of a "
                    "communicator must pass the same id and its own rank", rank, ranks, part_size, part_rank);
    }
    Comm* c = new Comm{rank, ranks, part};
    *comm = (SSNCCLcomm)c;
    return kSuccess;
}

EXPORT SSNCCLresult ncclCommDestroy(SSNCCLcomm comm) {
    if (!comm) return kInvalidArgument;
    Comm* c = (Comm*)comm;
    // A communicator destroyed after MPI_Finalize (real NCCL does not use MPI, so callers may do that) leaks
    // its MPI handle instead of aborting.
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&c->mpi);
    delete c;
    return kSuccess;
}

EXPORT SSNCCLresult ncclCommAbort(SSNCCLcomm comm) { return ncclCommDestroy(comm); }

EXPORT SSNCCLresult ncclCommGetAsyncError(SSNCCLcomm comm, SSNCCLresult* error) {
    if (!comm || !error) return kInvalidArgument;
    *error = kSuccess;
    return kSuccess;
}

EXPORT SSNCCLresult ncclAllReduce(const void* send, void* recv, size_t count, int dtype, int op, SSNCCLcomm comm,
                                  SSCUstream) {
    const char* call = "ncclAllReduce";
    if (SSNCCLresult r = check_call(call, comm, dtype, op, true, count, false)) return r;
    const size_t bytes = count * type_size(dtype);
    if (SSNCCLresult r = check_buffers(call, send, bytes, recv, bytes)) return r;
    if (count == 0) return kSuccess;
    const Comm* c = (const Comm*)comm;
    std::vector<char> in = widen(send, count, dtype), out(in.size());
    if (SSNCCLresult r = mpi(MPI_Allreduce(in.data(), out.data(), (int)count, mpi_type(dtype), mpi_op(op), c->mpi), call))
        return r;
    narrow(out, recv, count, dtype, op, c->size);
    return kSuccess;
}

EXPORT SSNCCLresult ncclReduceScatter(const void* send, void* recv, size_t recvCount, int dtype, int op,
                                      SSNCCLcomm comm, SSCUstream) {
    const char* call = "ncclReduceScatter";
    if (SSNCCLresult r = check_call(call, comm, dtype, op, true, recvCount, true)) return r;
    const Comm* c = (const Comm*)comm;
    const size_t e = type_size(dtype);
    if (SSNCCLresult r = check_buffers(call, send, recvCount * c->size * e, recv, recvCount * e)) return r;
    if (recvCount == 0) return kSuccess;
    std::vector<char> in = widen(send, recvCount * c->size, dtype), out(in.size() / c->size);
    if (SSNCCLresult r = mpi(MPI_Reduce_scatter_block(in.data(), out.data(), (int)recvCount, mpi_type(dtype),
                                                      mpi_op(op), c->mpi), call))
        return r;
    narrow(out, recv, recvCount, dtype, op, c->size);
    return kSuccess;
}

EXPORT SSNCCLresult ncclAllGather(const void* send, void* recv, size_t sendCount, int dtype, SSNCCLcomm comm,
                                  SSCUstream) {
    const char* call = "ncclAllGather";
    if (SSNCCLresult r = check_call(call, comm, dtype, 0, false, sendCount, true)) return r;
    const Comm* c = (const Comm*)comm;
    const size_t bytes = sendCount * type_size(dtype);
    if (SSNCCLresult r = check_buffers(call, send, bytes, recv, bytes * c->size)) return r;
    if (sendCount == 0) return kSuccess;
    std::vector<char> in((const char*)send, (const char*)send + bytes);   // a copy: `send` may lie inside `recv`
    return mpi(MPI_Allgather(in.data(), (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, c->mpi), call);
}

EXPORT SSNCCLresult ncclBroadcast(const void* send, void* recv, size_t count, int dtype, int root, SSNCCLcomm comm,
                                  SSCUstream) {
    const char* call = "ncclBroadcast";
    if (SSNCCLresult r = check_call(call, comm, dtype, 0, false, count, false)) return r;
    const Comm* c = (const Comm*)comm;
    if (root < 0 || root >= c->size) return fail(kInvalidArgument, call, "root %d of %d ranks", root, c->size);
    const size_t bytes = count * type_size(dtype);
    if (SSNCCLresult r = check_buffers(call, c->rank == root ? send : recv, bytes, recv, bytes)) return r;
    if (count == 0) return kSuccess;
    if (c->rank == root && send != recv) memmove(recv, send, bytes);
    return mpi(MPI_Bcast(recv, (int)bytes, MPI_BYTE, root, c->mpi), call);
}

// Point-to-point as blocking MPI messages on the communicator's split: FIFO per peer pair, as NCCL orders them.
// Blocking is stricter than a GPU stream (whose host call returns at once), so a program that passes here never
// relies on buffering.
EXPORT SSNCCLresult ncclSend(const void* send, size_t count, int dtype, int peer, SSNCCLcomm comm, SSCUstream) {
    const char* call = "ncclSend";
    if (SSNCCLresult r = check_call(call, comm, dtype, 0, false, count, false)) return r;
    const Comm* c = (const Comm*)comm;
    if (peer < 0 || peer >= c->size || peer == c->rank) return fail(kInvalidArgument, call, "peer %d of %d ranks (this is rank %d)", peer, c->size, c->rank);
    const size_t bytes = count * type_size(dtype);
    if (SSNCCLresult r = check_buffers(call, send, bytes, send, bytes)) return r;
    if (count == 0) return kSuccess;
    return mpi(MPI_Send(send, (int)bytes, MPI_BYTE, peer, 0, c->mpi), call);
}

EXPORT SSNCCLresult ncclRecv(void* recv, size_t count, int dtype, int peer, SSNCCLcomm comm, SSCUstream) {
    const char* call = "ncclRecv";
    if (SSNCCLresult r = check_call(call, comm, dtype, 0, false, count, false)) return r;
    const Comm* c = (const Comm*)comm;
    if (peer < 0 || peer >= c->size || peer == c->rank) return fail(kInvalidArgument, call, "peer %d of %d ranks (this is rank %d)", peer, c->size, c->rank);
    const size_t bytes = count * type_size(dtype);
    if (SSNCCLresult r = check_buffers(call, recv, bytes, recv, bytes)) return r;
    if (count == 0) return kSuccess;
    MPI_Status status;
    if (SSNCCLresult r = mpi(MPI_Recv(recv, (int)bytes, MPI_BYTE, peer, 0, c->mpi, &status), call)) return r;
    int got = 0;
    MPI_Get_count(&status, MPI_BYTE, &got);
    return (size_t)got == bytes ? kSuccess
        : fail(kInvalidArgument, call, "rank %d sent %d bytes; this receive expects %zu (count or dtype differ)", peer, got, bytes);
}

EXPORT SSNCCLresult ncclGroupStart(void) { return kSuccess; }
EXPORT SSNCCLresult ncclGroupEnd(void) { return kSuccess; }
