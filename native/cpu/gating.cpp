// Masked-dense gating: a module's output times its per-row gate, and the gate's gradient.
#include "skipgpt.h"

// out[n] = sum_j a[i, j] * b[i, j] for a, b[n, d]
void sg_cpu_row_dot(float *out, const float *a, const float *b, int n, int d) {
#pragma omp parallel for schedule(static) if ((int64_t)n * d > (1 << 16))
    for (int i = 0; i < n; i++) {
        const float *ai = a + (int64_t)i * d, *bi = b + (int64_t)i * d;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < d; j++) sum += ai[j] * bi[j];
        out[i] = sum;
    }
}

// x[n, d] row i *= s[i]
void sg_cpu_scale_rows(float *x, const float *s, int n, int d) {
#pragma omp parallel for schedule(static) if ((int64_t)n * d > (1 << 16))
    for (int i = 0; i < n; i++) {
        float *xi = x + (int64_t)i * d;
        const float si = s[i];
#pragma omp simd
        for (int j = 0; j < d; j++) xi[j] *= si;
    }
}
