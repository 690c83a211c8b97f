/*
 * skipgpt_training.h - the per-element arithmetic of the training kernels (router gates, AdamW), shared by
 * native/cpu and native/cuda so that both compute the same bits: the gate noise comes from an integer generator
 * (Philox4x32-10), and AdamW runs in double precision without fused multiply-adds, as the plain-Java loops it
 * replaces did. Not part of the C interface (skipgpt.h): C++ and CUDA only, host and device.
 *
 * The host side must be compiled with -ffp-contract=off (see cmake/SkipgptCpu.cmake): gcc would otherwise fuse
 * a * b + c on an FMA target and round once where Java rounds twice. On the device the products and sums below are
 * spelled with the round-to-nearest intrinsics, which nvcc never fuses (--use_fast_math implies --fmad=true), and
 * training.cu, which uses them, is compiled with --ftz=false (cmake/SkipgptCuda.cmake): --use_fast_math would flush
 * subnormal moments and parameters to zero where the CPU keeps them.
 */
#ifndef SKIPGPT_TRAINING_H
#define SKIPGPT_TRAINING_H

#include <stdint.h>

#include <cmath>

#ifdef __CUDACC__
#define SG_HD __host__ __device__ __forceinline__
#else
#define SG_HD inline
#endif

namespace sg {

// ---------------------------------------------------------------- exact double arithmetic

SG_HD double dmul(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

SG_HD double dadd(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}

SG_HD double ddiv(double a, double b) {
#ifdef __CUDA_ARCH__
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}

SG_HD double dsqrt(double a) {
#ifdef __CUDA_ARCH__
    return __dsqrt_rn(a);
#else
    return std::sqrt(a);
#endif
}

// ---------------------------------------------------------------- Philox4x32-10

// Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011): four
// 32-bit words of output from a 128-bit counter and a 64-bit key, ten rounds of a keyed bijection. Counter-based:
// any draw is computed directly from its counter, so every thread, and every backend, finds the same bits.
struct Philox4 {
    uint32_t v[4];
};

SG_HD Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) {  // the key schedule: Weyl increments (golden ratio, sqrt(3) - 1)
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const uint64_t p0 = (uint64_t)0xD2511F53u * c.v[0], p1 = (uint64_t)0xCD9E8D57u * c.v[2];
        c = Philox4{{(uint32_t)(p1 >> 32) ^ c.v[1] ^ k0, (uint32_t)p1, (uint32_t)(p0 >> 32) ^ c.v[3] ^ k1,
                     (uint32_t)p0}};
    }
    return c;
}

// A uniform in (0, 1) from 64 random bits: the midpoint of one of 2^52 equal cells, exact in a double and never 0
// or 1 (either would make the Gumbel noise infinite).
SG_HD double open_uniform(uint32_t hi, uint32_t lo) {
    return ((double)((((uint64_t)hi << 32) | lo) >> 12) + 0.5) * 0x1.0p-52;
}

// ---------------------------------------------------------------- router gates (see sg_cpu_router_gates)

// Gate j (0 attention, 1 MLP) of row i: the soft probability (*soft) and the gate (the return value) from the
// row's logits z[4] and the bias[4].
SG_HD float router_gate(float *soft, const float *z, const float *bias, int i, int j, double tau, int noise,
                        uint64_t key, uint64_t offset, const float *hard_gate, const float *hard_soft) {
    const float ze = z[2 * j] + bias[2 * j], zs = z[2 * j + 1] + bias[2 * j + 1];
    double a;
    if (noise) {
        const Philox4 r = philox4x32_10(Philox4{{(uint32_t)i, (uint32_t)j, (uint32_t)offset, (uint32_t)(offset >> 32)}},
                                        (uint32_t)key, (uint32_t)(key >> 32));
        const double ge = -log(-log(open_uniform(r.v[0], r.v[1]))), gs = -log(-log(open_uniform(r.v[2], r.v[3])));
        a = ((double)ze + ge) - ((double)zs + gs);
    } else {
        a = ze - zs;  // in float, then widened
    }
    const double y = 1.0 / (1.0 + exp(-a / tau));
    *soft = (float)y;
    if (!hard_gate) return a > 0 ? 1.0f : 0.0f;
    return hard_soft ? (float)(*hard_gate + (y - *hard_soft)) : *hard_gate;
}

// The execute logit's gradient of gate j of a row (the skip logit's is its negation): through the soft probability
// s, with the gate's gradient dgate plus gate_grad (added in float).
SG_HD float router_gate_grad(float dgate, float gate_grad, float s, double tau) {
    const double c = dgate + gate_grad, y = s;
    return (float)(c * y * (1 - y) / tau);
}

// ---------------------------------------------------------------- dropout (see sg_cpu_dropout_mask)

// Element i of a dropout mask: 0 with probability rate, else keep; its uniform from words 0 and 1 of the counter
// (i, offset) under the key.
SG_HD float dropout_mask_element(uint64_t i, double rate, float keep, uint64_t key, uint64_t offset) {
    const Philox4 r = philox4x32_10(Philox4{{(uint32_t)i, (uint32_t)(i >> 32), (uint32_t)offset, (uint32_t)(offset >> 32)}},
                                    (uint32_t)key, (uint32_t)(key >> 32));
    return open_uniform(r.v[0], r.v[1]) < rate ? 0.0f : keep;
}

// ---------------------------------------------------------------- AdamW (see sg_cpu_adamw)

struct AdamStep {
    double grad_scale, beta1, beta2, eps, step_size, sqrt_correction2, keep;
};

// One element: the moments m, v and the parameter p updated in place from the gradient grad.
SG_HD void adamw_element(float *p, float *m, float *v, float grad, const AdamStep &s) {
    const double g = (float)dmul(grad, s.grad_scale);  // rounded as a gradient scaled in place would be
    const double mj = dadd(dmul(s.beta1, *m), dmul(1 - s.beta1, g));
    const double vj = dadd(dmul(s.beta2, *v), dmul(dmul(1 - s.beta2, g), g));
    *m = (float)mj;
    *v = (float)vj;
    const double denom = dadd(ddiv(dsqrt(vj), s.sqrt_correction2), s.eps);
    *p = (float)dadd(dmul(*p, s.keep), -ddiv(dmul(s.step_size, mj), denom));
}

}  // namespace sg

#endif
