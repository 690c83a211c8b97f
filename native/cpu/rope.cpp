// Rotary position embedding, in place, both pair conventions.
#include "skipgpt.h"
#include <cmath>
#include <vector>

// x[n, n_heads * head_dim]; pair j of a head is (2j, 2j+1) or, with rotate_half, (j, j + head_dim/2);
// its angle is pos[i] * theta^(-2j / head_dim). Angles in double: positions reach 1e5 and more, where a
// float angle is off by ~1e-2 rad.
void sg_cpu_rope(float *x, const int32_t *pos, int n, int n_heads, int head_dim, float theta, int rotate_half) {
    const int half = head_dim / 2;
    std::vector<double> freq(half);  // [half]
    for (int j = 0; j < half; j++) freq[j] = std::pow((double)theta, -2.0 * j / head_dim);
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
