// Elementwise kernels: residual add and SwiGLU.
#include "skipgpt.h"
#include <cmath>

// dst[len] += src[len]
void sg_cpu_add(float *dst, const float *src, int64_t len) {
#pragma omp parallel for simd schedule(static) if (len > (1 << 16))
    for (int64_t i = 0; i < len; i++) dst[i] += src[i];
}

// out[len] = silu(gate) * up, silu(g) = g / (1 + e^-g)
void sg_cpu_swiglu(float *out, const float *gate, const float *up, int64_t len) {
#pragma omp parallel for simd schedule(static) if (len > (1 << 16))
    for (int64_t i = 0; i < len; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}
