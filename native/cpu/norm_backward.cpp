// Backward of RMSNorm.
#include "skipgpt.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace {
constexpr int kColumnChunk = 256;  // columns of dw one task owns: 1 KB of dw, rows streamed past it
}

// dy, x, dx[n, d], w, dw[d]; r_i = 1 / sqrt(mean(x_i^2) + eps).
// dx[i, j] = r_i w_j dy_ij - x_ij r_i^3 / d * sum_k dy_ik w_k x_ik;  dw[j] += sum_i dy_ij x_ij r_i.
// Rows run in parallel for dx; dw is a sum over rows, so it runs in a second pass over column chunks, each
// chunk owned by one thread: no shared accumulator, and the summation order does not depend on the threads.
void sg_cpu_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int n, int d,
                             float eps) {
    std::vector<float> r(n);  // [n] each row's 1 / rms, for the dw pass
#pragma omp parallel for schedule(static) if (n > 16)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * d, *dyi = dy + (int64_t)i * d;
        float *dxi = dx + (int64_t)i * d;
        float ss = 0.0f, dot = 0.0f;
#pragma omp simd reduction(+ : ss, dot)
        for (int j = 0; j < d; j++) {
            ss += xi[j] * xi[j];
            dot += dyi[j] * w[j] * xi[j];
        }
        const float ri = 1.0f / std::sqrt(ss / d + eps), coef = dot * ri * ri * ri / d;
        r[i] = ri;
#pragma omp simd
        for (int j = 0; j < d; j++) dxi[j] = ri * w[j] * dyi[j] - xi[j] * coef;
    }
    if (!dw) return;
    const int chunks = (d + kColumnChunk - 1) / kColumnChunk;
#pragma omp parallel for schedule(static) if ((int64_t)n * d > (1 << 16))
    for (int c = 0; c < chunks; c++) {
        const int j0 = c * kColumnChunk, j1 = std::min(d, j0 + kColumnChunk);
        for (int i = 0; i < n; i++) {
            const float *xi = x + (int64_t)i * d, *dyi = dy + (int64_t)i * d;
            const float ri = r[i];
#pragma omp simd
            for (int j = j0; j < j1; j++) dw[j] += dyi[j] * xi[j] * ri;
        }
    }
}
