// The emulator's kernel runner: the registry of host-compiled kernels and a fiber scheduler that runs a grid block
// after block, every CUDA thread of a block a fiber (own stack, cooperative switches) on the launching OS thread.
// Invariant: all blockDim fibers of a block are live together and a fiber only yields inside a barrier, so the
// scheduler is a round-robin over fibers whose barrier generation moved on; nothing runnable while fibers are still
// live is a deadlock (a __syncthreads or shuffle not reached by every thread), reported instead of hanging.
#include "emu.h"
#include "emu_runtime.h"

#include <map>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

dim3 threadIdx, blockIdx, blockDim, gridDim;
int emu_linear, emu_nthreads;
void* emu_dyn_smem;
uint64_t emu_slots[2][1024];
unsigned char emu_phase[1024];
uint32_t emu_mma_slots[2][1024][6];
unsigned char emu_mma_phase[1024];

// ----- Registry -----

static std::map<std::string, EmuKernel>& registry() {
    static std::map<std::string, EmuKernel> r;
    return r;
}
static std::vector<EmuProgram>& programs() {
    static std::vector<EmuProgram> p;
    return p;
}
void emu_register(const EmuKernel& kernel) { registry()[kernel.name] = kernel; }
void emu_register_program(const char* family, uint32_t cubin_crc, uint32_t ptx_crc) {
    programs().push_back(EmuProgram{family, cubin_crc, ptx_crc, {}});
}
const EmuKernel* emu_find(const char* name) {
    auto it = registry().find(name);
    return it == registry().end() ? nullptr : &it->second;
}
int emu_kernel_count() { return (int)registry().size(); }
const std::vector<EmuProgram>& emu_programs() {
    static bool filled = false;   // kernels are attached on first use: registration order across files is free
    if (!filled) {
        filled = true;
        for (auto& p : programs())
            for (auto& [name, k] : registry())
                if (!strcmp(k.family, p.family)) p.kernels.push_back(&k);
    }
    return programs();
}

// ----- Context switching -----

#if defined(__x86_64__) && !defined(SSEMU_UCONTEXT)
// Saves the callee-saved registers on the current stack, stores the stack pointer in *save, and resumes the
// context whose stack pointer is `to` (a stack laid out by this same routine, or by ctx_init below).
extern "C" void emu_ctx_switch(void** save, void* to);
asm(R"(
    .text
    .p2align 4
    .type emu_ctx_switch, @function
emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_ctx_switch, .-emu_ctx_switch
)");
struct Ctx { void* sp = nullptr; };
static void ctx_init(Ctx& c, char* stack, size_t size, void (*entry)()) {
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr;            // fake return address: `entry` starts with rsp % 16 == 8, like any function
    *--sp = (void*)entry;       // popped by `ret`
    for (int i = 0; i < 6; ++i) *--sp = nullptr;   // rbp rbx r12 r13 r14 r15
    c.sp = sp;
}
static inline void ctx_switch(Ctx& from, Ctx& to) { emu_ctx_switch(&from.sp, to.sp); }
#else
#include <ucontext.h>
struct Ctx { ucontext_t uc; };
static void ctx_init(Ctx& c, char* stack, size_t size, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
static inline void ctx_switch(Ctx& from, Ctx& to) { swapcontext(&from.uc, &to.uc); }
#endif

// ----- Fibers and barriers -----

namespace {
struct Barrier { int arrived = 0, expected = 0; unsigned gen = 0; };
enum State : unsigned char { READY, RUNNING, WAITING, DONE };
struct Fiber {
    Ctx ctx;
    Barrier* on = nullptr;
    unsigned gen = 0;
    State state = DONE;
    dim3 tid;
    char* stack = nullptr;   // base of the mapping: one guard page, then the stack
};

const size_t kPage = 4096;
size_t stack_bytes = 0;
Fiber fibers[1024];
int fibers_mapped = 0;
Barrier block_bar, warp_bar[32];
int n_threads = 0, live = 0, cur = 0;
bool deadlocked = false;
Ctx main_ctx;
const EmuLaunch* active = nullptr;

// Dynamic shared memory: the buffer ends exactly at a PROT_NONE page, so running off its end faults at once.
char* smem_map = nullptr;
size_t smem_map_bytes = 0;
char* smem_guard = nullptr;

volatile sig_atomic_t in_kernel = 0;
char fault_prefix[512];
}

static void enter(int j) {
    cur = j;
    Fiber& f = fibers[j];
    f.state = RUNNING;
    threadIdx = f.tid;
    emu_linear = j;
}

/// Switches from fiber `me` (waiting or done) to the next runnable fiber after it, or back to the launcher
/// when none is (all done, or a deadlock).
static void run_next(int me) {
    for (int step = 1; step <= n_threads; ++step) {
        int j = me + step;
        if (j >= n_threads) j -= n_threads;
        Fiber& f = fibers[j];
        if (f.state == READY || (f.state == WAITING && f.on->gen != f.gen)) {
            if (j == me) { enter(j); return; }
            enter(j);
            ctx_switch(fibers[me].ctx, f.ctx);
            return;
        }
    }
    if (live > 0) deadlocked = true;
    ctx_switch(fibers[me].ctx, main_ctx);
}

static void wait(Barrier& b) {
    if (++b.arrived == b.expected) {   // the last arrival releases the others and carries on
        b.arrived = 0;
        ++b.gen;
        return;
    }
    Fiber& f = fibers[cur];
    f.state = WAITING;
    f.on = &b;
    f.gen = b.gen;
    run_next(cur);
}

/// An exited thread no longer counts towards its barriers (as on sm_70+ hardware).
static void drop(Barrier& b) {
    if (--b.expected > 0 && b.arrived == b.expected) {
        b.arrived = 0;
        ++b.gen;
    }
}

void emu_syncthreads() { wait(block_bar); }
void emu_syncwarp() { wait(warp_bar[emu_linear >> 5]); }

static void fiber_main() {
    active->kernel->thunk(active->params);
    const int me = cur;
    fibers[me].state = DONE;
    --live;
    drop(block_bar);
    drop(warp_bar[me >> 5]);
    if (live == 0) ctx_switch(fibers[me].ctx, main_ctx);
    else run_next(me);
    abort();   // a finished fiber is never resumed
}

static bool map_fibers(int n, char* error, size_t length) {
    if (!stack_bytes) {
        const char* kb = getenv("SSEMU_STACK_KB");
        stack_bytes = (kb && atol(kb) > 0 ? (size_t)atol(kb) : 256) << 10;
        stack_bytes = (stack_bytes + kPage - 1) & ~(kPage - 1);
    }
    for (; fibers_mapped < n; ++fibers_mapped) {
        void* m = mmap(nullptr, stack_bytes + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                       -1, 0);
        if (m == MAP_FAILED || mprotect(m, kPage, PROT_NONE) != 0) {
            snprintf(error, length, "cannot map a %zu KiB fiber stack", stack_bytes >> 10);
            return false;
        }
        fibers[fibers_mapped].stack = (char*)m;
    }
    return true;
}

static bool map_smem(size_t bytes, char* error, size_t length) {
    const size_t need = (bytes + kPage - 1) & ~(kPage - 1);
    if (smem_map && smem_map_bytes >= need) return true;
    if (smem_map) munmap(smem_map, smem_map_bytes + kPage);
    smem_map_bytes = need < 256 * 1024 ? 256 * 1024 : need;
    void* m = mmap(nullptr, smem_map_bytes + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        smem_map = nullptr;
        snprintf(error, length, "cannot map %zu bytes of shared memory", bytes);
        return false;
    }
    smem_map = (char*)m;
    smem_guard = smem_map + smem_map_bytes;
    mprotect(smem_guard, kPage, PROT_NONE);
    return true;
}

// ----- Faults inside a kernel: say which kernel, block and thread, then let the previous handler act -----

static struct sigaction previous_segv, previous_bus;

static void put(char* buf, size_t& n, const char* s) { while (*s && n < 1000) buf[n++] = *s++; }
static void put_num(char* buf, size_t& n, unsigned long long v, int base) {
    char digits[24];
    int k = 0;
    do { digits[k++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
    while (k && n < 1000) buf[n++] = digits[--k];
}

static void on_fault(int sig, siginfo_t* info, void*) {
    if (in_kernel) {
        in_kernel = 0;
        char buf[1024];
        size_t n = 0;
        const uintptr_t a = (uintptr_t)info->si_addr;
        put(buf, n, "ssemu: ");
        put(buf, n, sig == SIGSEGV ? "SIGSEGV" : "SIGBUS");
        put(buf, n, " in ");
        put(buf, n, fault_prefix);
        put(buf, n, ", block (");
        put_num(buf, n, blockIdx.x, 10); put(buf, n, ",");
        put_num(buf, n, blockIdx.y, 10); put(buf, n, ",");
        put_num(buf, n, blockIdx.z, 10); put(buf, n, ") thread (");
        put_num(buf, n, threadIdx.x, 10); put(buf, n, ",");
        put_num(buf, n, threadIdx.y, 10); put(buf, n, ",");
        put_num(buf, n, threadIdx.z, 10); put(buf, n, ") at address 0x");
        put_num(buf, n, a, 16);
        if (smem_guard && a >= (uintptr_t)smem_guard && a < (uintptr_t)smem_guard + kPage) {
            put(buf, n, ": past the end of the launch's ");
            put_num(buf, n, active ? active->smem : 0, 10);
            put(buf, n, " bytes of dynamic shared memory");
        } else {
            // Below the running fiber's stack top and at most 16 MiB under its guard page: a frame too big for it.
            const uintptr_t base = (uintptr_t)fibers[cur].stack, top = base + kPage + stack_bytes;
            const bool stack = a < top && a + (16u << 20) >= base;
            put(buf, n, stack ? ": fiber stack overflow (raise SSEMU_STACK_KB)"
                              : ": not host memory the kernel may touch (a bad device pointer or an index past an allocation?)");
        }
        put(buf, n, "\n");
        ssize_t ignored = write(2, buf, n);
        (void)ignored;
    }
    sigaction(sig, sig == SIGSEGV ? &previous_segv : &previous_bus, nullptr);   // the fault repeats on return
}

static void install_fault_handler() {
    static bool installed = false;
    if (!installed) {
        installed = true;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &previous_segv);
        sigaction(SIGBUS, &sa, &previous_bus);
    }
    // A fiber stack overflow faults on the overflowing stack: give this thread an alternate one if it has none.
    static thread_local bool checked = false;
    if (!checked) {
        checked = true;
        stack_t current;
        if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
            stack_t alt;
            alt.ss_size = 64 * 1024;
            alt.ss_sp = malloc(alt.ss_size);   // kept for the thread's life
            alt.ss_flags = 0;
            if (alt.ss_sp) sigaltstack(&alt, nullptr);
        }
    }
}

// ----- Launch -----

int emu_run(const EmuLaunch& launch, char* error, size_t length) {
    const int n = (int)(launch.block.x * launch.block.y * launch.block.z);
    if (!map_fibers(n, error, length) || !map_smem(launch.smem, error, length)) return 2;   // CUDA_ERROR_OUT_OF_MEMORY
    install_fault_handler();
    snprintf(fault_prefix, sizeof fault_prefix, "kernel %s (grid %u,%u,%u block %u,%u,%u, %zu B shared)",
             launch.kernel->name, launch.grid.x, launch.grid.y, launch.grid.z, launch.block.x, launch.block.y,
             launch.block.z, launch.smem);
    const size_t smem_rounded = (launch.smem + 15) & ~(size_t)15;
    char* smem = smem_guard - smem_rounded;
    active = &launch;
    gridDim = launch.grid;
    blockDim = launch.block;
    n_threads = n;
    emu_nthreads = n;
    emu_dyn_smem = smem;
    for (int t = 0; t < n; ++t)
        fibers[t].tid = dim3{t % launch.block.x, (t / launch.block.x) % launch.block.y,
                             t / (launch.block.x * launch.block.y)};
    in_kernel = 1;
    int status = 0;
    for (unsigned z = 0; z < launch.grid.z && !status; ++z)
        for (unsigned y = 0; y < launch.grid.y && !status; ++y)
            for (unsigned x = 0; x < launch.grid.x && !status; ++x) {
                blockIdx = dim3{x, y, z};
                memset(smem, 0xff, smem_rounded);   // NaN poison: reading unwritten shared memory shows up
                memset(emu_phase, 0, (size_t)n);
                memset(emu_mma_phase, 0, (size_t)n);
                block_bar = Barrier{0, n, 0};
                for (int w = 0; w < (n + 31) / 32; ++w) warp_bar[w] = Barrier{0, n - 32 * w < 32 ? n - 32 * w : 32, 0};
                for (int t = 0; t < n; ++t) {
                    fibers[t].state = READY;
                    ctx_init(fibers[t].ctx, fibers[t].stack + kPage, stack_bytes, fiber_main);
                }
                live = n;
                deadlocked = false;
                enter(0);
                ctx_switch(main_ctx, fibers[0].ctx);
                if (deadlocked) {
                    int at_block = 0, at_warp = 0, done = 0;
                    for (int t = 0; t < n; ++t) {
                        if (fibers[t].state == DONE) ++done;
                        else if (fibers[t].on == &block_bar) ++at_block;
                        else ++at_warp;
                    }
                    snprintf(error, length,
                             "deadlock in block (%u,%u,%u): %d threads wait at __syncthreads, %d at a warp "
                             "shuffle/vote and %d have exited (a barrier not reached by every thread)",
                             x, y, z, at_block, at_warp, done);
                    status = 719;   // CUDA_ERROR_LAUNCH_FAILED
                }
            }
    in_kernel = 0;
    active = nullptr;
    return status;
}
