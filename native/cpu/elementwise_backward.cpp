// Backward of SwiGLU.
#include "skipgpt.h"
#include <cmath>

// len elements; out = g * sigma(g) * u with sigma(g) = 1 / (1 + e^-g), and d/dg [g sigma(g)] =
// sigma(g) (1 + g (1 - sigma(g))). Every input element is read before its outputs are written, so an output
// may alias an input exactly. For g -> -inf, e^-g overflows to inf and sigma = 0: both gradients go to 0.
void sg_cpu_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                            int64_t len) {
#pragma omp parallel for simd schedule(static) if (len > (1 << 16))
    for (int64_t i = 0; i < len; i++) {
        const float g = gate[i], u = up[i], dy = dout[i];
        const float sig = 1.0f / (1.0f + std::exp(-g));
        dgate[i] = dy * u * sig * (1.0f + g * (1.0f - sig));
        dup[i] = dy * g * sig;
    }
}
