// Row-wise normalisations: RMSNorm and softmax.
#include "skipgpt.h"
#include <cmath>

// out[n, d] = x / sqrt(mean(x^2) + eps) * w[d]
void sg_cpu_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps) {
#pragma omp parallel for schedule(static) if (n > 16)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (int64_t)i * d;
        float *oi = out + (int64_t)i * d;
        float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < d; j++) ss += xi[j] * xi[j];
        float scale = 1.0f / std::sqrt(ss / d + eps);
#pragma omp simd
        for (int j = 0; j < d; j++) oi[j] = xi[j] * scale * w[j];
    }
}

// x[n, d] <- softmax over each row, max-subtracted. The sum is kept in double: over a vocabulary-sized row
// (32k terms) a float running sum is off by ~1e-5 relative, and that error lands on every output.
void sg_cpu_softmax(float *x, int n, int d) {
#pragma omp parallel for schedule(static) if (n > 16)
    for (int i = 0; i < n; i++) {
        float *xi = x + (int64_t)i * d;
        float mx = xi[0];
        for (int j = 1; j < d; j++) mx = xi[j] > mx ? xi[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < d; j++) {
            xi[j] = std::exp(xi[j] - mx);
            sum += xi[j];
        }
        float inv = (float)(1.0 / sum);
#pragma omp simd
        for (int j = 0; j < d; j++) xi[j] *= inv;
    }
}
