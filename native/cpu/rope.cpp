// Rotary position embedding, in place, both pair conventions, and its backward (the inverse rotation).
#include "skipgpt.h"
#include <cmath>
#include <vector>

namespace {

// x[n, n_heads * head_dim]; pair j of a head is (2j, 2j+1) or, with rotate_half, (j, j + head_dim/2);
// its angle is direction * pos[i] * theta^(-2j / head_dim), direction +1 (forward) or -1 (backward: a
// rotation's transpose is its inverse). Angles in double: positions reach 1e5 and more, where a float angle
// is off by ~1e-2 rad.
void rotate(float *x, const int32_t *pos, int n, int n_heads, int head_dim, float theta, int rotate_half,
            double direction) {
    const int half = head_dim / 2;
    std::vector<double> freq(half);  // [half]
    for (int j = 0; j < half; j++) freq[j] = direction * std::pow((double)theta, -2.0 * j / head_dim);
#pragma omp parallel for schedule(static) if (n > 16)
    for (int i = 0; i < n; i++) {
        float *xi = x + (int64_t)i * n_heads * head_dim;
        for (int j = 0; j < half; j++) {
            double angle = pos[i] * freq[j];
            float c = (float)std::cos(angle), s = (float)std::sin(angle);
            int a = rotate_half ? j : 2 * j;
            int b = rotate_half ? j + half : 2 * j + 1;
            for (int h = 0; h < n_heads; h++) {
                float *xh = xi + h * head_dim;
                float x0 = xh[a], x1 = xh[b];
                xh[a] = x0 * c - x1 * s;
                xh[b] = x0 * s + x1 * c;
            }
        }
    }
}

}  // namespace

void sg_cpu_rope(float *x, const int32_t *pos, int n, int n_heads, int head_dim, float theta, int rotate_half) {
    rotate(x, pos, n, n_heads, head_dim, theta, rotate_half, 1.0);
}

void sg_cpu_rope_backward(float *dx, const int32_t *pos, int n, int n_heads, int head_dim, float theta,
                          int rotate_half) {
    rotate(dx, pos, n, n_heads, head_dim, theta, rotate_half, -1.0);
}
