// The fused Adam/AdamW step over flat buffers, optionally writing a bf16/fp16 copy of the weights.
// One pass reads p, g, m, v and writes p, m, v (and the copy).
// Invariant: every operation is an explicitly rounded fp32 op in the order of CPUBackend.adamLanes (no FMA
// contraction, IEEE sqrt and division), so with the same AdamConstants the results are the CPU's bits exactly.
// Entry points: `ss_adam_<grad dtype>` and `ss_adam_<grad dtype>_to_<copy dtype>`.
#include "common.cuh"

// ===== family: optim =====

/// One element of the update (AdamHyper's formula with the host-folded constants of CPUBackend's AdamConstants).
struct SSAdamK {
    float beta1, omb1, beta2, omb2, eps, invbc2, step, gscale, decay, wd;
    int general, l2;
};

__device__ __forceinline__ void ss_adam_elem(float& p, float g, float& m, float& v, const SSAdamK& k) {
    if (k.general) {
        g = __fmul_rn(g, k.gscale);
        if (k.l2) g = __fadd_rn(g, __fmul_rn(k.wd, p));
    }
    m = __fadd_rn(__fmul_rn(k.beta1, m), __fmul_rn(k.omb1, g));
    v = __fadd_rn(__fmul_rn(k.beta2, v), __fmul_rn(k.omb2, __fmul_rn(g, g)));
    const float denom = __fadd_rn(__fmul_rn(__fsqrt_rn(v), k.invbc2), k.eps);
    p = __fsub_rn(__fmul_rn(p, k.decay), __fmul_rn(k.step, __fdiv_rn(m, denom)));
}

template <typename C> struct ss_has_copy { static const bool value = true; };
template <> struct ss_has_copy<void> { static const bool value = false; };

/// C == void: no low-precision copy. Packs of 4 elements when every pointer is aligned for them.
template <typename G, typename C>
__device__ __forceinline__ void ss_adam_body(float* p, const G* g, float* m, float* v, C* copy, ss_i64 n,
                                             const SSAdamK& k) {
    constexpr bool hasCopy = ss_has_copy<C>::value;
    const ss_i64 tid = SS_TID, stride = SS_STRIDE;
    bool vec = ss_aligned(p, 16) && ss_aligned(m, 16) && ss_aligned(v, 16) && ss_aligned(g, 4 * sizeof(G));
    if constexpr (hasCopy) vec = vec && ss_aligned(copy, 8);
    ss_i64 start = 0;
    if (vec) {
        const ss_i64 nv = n >> 2;
        for (ss_i64 i = tid; i < nv; i += stride) {
            float4 pp = reinterpret_cast<float4*>(p)[i];
            float4 mm = reinterpret_cast<float4*>(m)[i];
            float4 vv = reinterpret_cast<float4*>(v)[i];
            const SSPack<G, 4> gg = reinterpret_cast<const SSPack<G, 4>*>(g)[i];
            ss_adam_elem(pp.x, ss_to_float(gg.v[0]), mm.x, vv.x, k);
            ss_adam_elem(pp.y, ss_to_float(gg.v[1]), mm.y, vv.y, k);
            ss_adam_elem(pp.z, ss_to_float(gg.v[2]), mm.z, vv.z, k);
            ss_adam_elem(pp.w, ss_to_float(gg.v[3]), mm.w, vv.w, k);
            reinterpret_cast<float4*>(p)[i] = pp;
            reinterpret_cast<float4*>(m)[i] = mm;
            reinterpret_cast<float4*>(v)[i] = vv;
            if constexpr (hasCopy) {
                SSPack<C, 4> cc;
                cc.v[0] = ss_from_float<C>(pp.x);
                cc.v[1] = ss_from_float<C>(pp.y);
                cc.v[2] = ss_from_float<C>(pp.z);
                cc.v[3] = ss_from_float<C>(pp.w);
                reinterpret_cast<SSPack<C, 4>*>(copy)[i] = cc;
            }
        }
        start = nv << 2;
    }
    for (ss_i64 i = start + tid; i < n; i += stride) {
        float pi = p[i], mi = m[i], vi = v[i];
        ss_adam_elem(pi, ss_to_float(g[i]), mi, vi, k);
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
        if constexpr (hasCopy) copy[i] = ss_from_float<C>(pi);
    }
}

// Arguments after n: beta1, 1 - beta1, beta2, 1 - beta2, eps, 1 / biasCorrection2Sqrt, lr / biasCorrection1,
// gradScale, decay (1 - lr * weightDecay when decoupled, else 1), weightDecay, general (l2 || gradScale != 1), l2
// (!decoupled && weightDecay != 0): each fp32 constant rounded from fp64 on the host exactly as AdamConstants.
#define SS_ADAM(NAME, G, C) \
    extern "C" __global__ void NAME(float* p, const G* g, float* m, float* v, void* copy, ss_i64 n, float beta1, \
                                    float omb1, float beta2, float omb2, float eps, float invbc2, float step, \
                                    float gscale, float decay, float wd, int general, int l2) { \
        SSAdamK k; \
        k.beta1 = beta1; k.omb1 = omb1; k.beta2 = beta2; k.omb2 = omb2; k.eps = eps; k.invbc2 = invbc2; \
        k.step = step; k.gscale = gscale; k.decay = decay; k.wd = wd; k.general = general; k.l2 = l2; \
        ss_adam_body<G, C>(p, g, m, v, static_cast<C*>(copy), n, k); \
    }
SS_ADAM(ss_adam_f32, float, void)
SS_ADAM(ss_adam_bf16, ss_bf16, void)
SS_ADAM(ss_adam_f16, ss_f16, void)
SS_ADAM(ss_adam_f32_to_bf16, float, ss_bf16)
SS_ADAM(ss_adam_f32_to_f16, float, ss_f16)
SS_ADAM(ss_adam_bf16_to_bf16, ss_bf16, ss_bf16)
SS_ADAM(ss_adam_bf16_to_f16, ss_bf16, ss_f16)
SS_ADAM(ss_adam_f16_to_bf16, ss_f16, ss_bf16)
SS_ADAM(ss_adam_f16_to_f16, ss_f16, ss_f16)
// ===== end of family: optim =====
