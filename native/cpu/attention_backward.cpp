// Backward of causal grouped-query attention (see skipgpt.h for the contract). Nothing is stored by the
// forward: the softmax rows are recomputed from q and k, which costs a few more dot products but no
// O(n * t) memory.
#include "skipgpt.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace {
constexpr int kKeyTile = 64;  // keys one dk/dv task owns: 2 x 32 KB of dk, dv at head_dim 128
}  // namespace

// dout, q, dq[n, H*hd]; k, v, dk, dv[t, Hkv*hd]. For query i, head h (kv head h / group), keys t <= pos[i]:
//   s_t = q.k_t * scale, P_t = exp(s_t - lse), dP_t = dout.v_t, D = sum_t P_t dP_t, dS_t = P_t (dP_t - D)
//   dq = scale * sum_t dS_t k_t;  dk_t += scale * dS_t q;  dv_t += P_t dout.
// Two parallel phases, so that no two threads ever add into the same element:
//   A. per (query, head): one pass over the keys for lse and D (online, like the forward), a second for dq;
//   B. per (kv head, key tile): every (query, head of the group) that sees the tile adds into its dk and dv
//      rows, which this task alone owns. The summation order is fixed: results do not depend on threads.
void sg_cpu_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                               const float *v, const int32_t *pos, int n, int n_heads, int n_kv_heads,
                               int head_dim) {
    if (n <= 0) return;
    const int group = n_heads / n_kv_heads;
    const int kv_stride = n_kv_heads * head_dim;
    const float scale = 1.0f / std::sqrt((float)head_dim);
    std::vector<float> lse((size_t)n * n_heads), dsum((size_t)n * n_heads);  // [n, H] per (query, head) row

    auto dot = [head_dim](const float *a, const float *b) {
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < head_dim; j++) s += a[j] * b[j];
        return s;
    };

#pragma omp parallel for collapse(2) schedule(dynamic, 4)
    for (int i = 0; i < n; i++) {
        for (int h = 0; h < n_heads; h++) {
            const int64_t row = (int64_t)i * n_heads + h;
            const float *qi = q + row * head_dim, *doi = dout + row * head_dim;
            const float *kh = k + (h / group) * head_dim, *vh = v + (h / group) * head_dim;
            // Pass 1: running max m, sum l = sum e^(s - m), and d = sum e^(s - m) dP, rescaled as m grows.
            float m = -INFINITY, l = 0.0f, d = 0.0f;
            for (int t = 0; t <= pos[i]; t++) {
                const float s = dot(qi, kh + (int64_t)t * kv_stride) * scale;
                const float dp = dot(doi, vh + (int64_t)t * kv_stride);
                const float m_new = std::max(m, s), corr = std::exp(m - m_new), p = std::exp(s - m_new);
                l = l * corr + p;
                d = d * corr + p * dp;
                m = m_new;
            }
            const float lse_i = m + std::log(l), d_i = d / l;
            lse[row] = lse_i;
            dsum[row] = d_i;
            // Pass 2: dq = scale * sum_t dS_t k_t.
            float *dqi = dq + row * head_dim;
            std::fill(dqi, dqi + head_dim, 0.0f);
            for (int t = 0; t <= pos[i]; t++) {
                const float *kt = kh + (int64_t)t * kv_stride;
                const float s = dot(qi, kt) * scale;
                const float p = std::exp(s - lse_i), ds = p * (dot(doi, vh + (int64_t)t * kv_stride) - d_i);
                const float c = ds * scale;
#pragma omp simd
                for (int j = 0; j < head_dim; j++) dqi[j] += c * kt[j];
            }
        }
    }

    int max_pos = 0;
    for (int i = 0; i < n; i++) max_pos = std::max(max_pos, pos[i]);
    const int tiles = max_pos / kKeyTile + 1;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int kvh = 0; kvh < n_kv_heads; kvh++) {
        for (int tile = 0; tile < tiles; tile++) {
            const int t0 = tile * kKeyTile;
            for (int i = 0; i < n; i++) {
                const int t1 = std::min(t0 + kKeyTile, pos[i] + 1);
                for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                    const int64_t row = (int64_t)i * n_heads + h;
                    const float *qi = q + row * head_dim, *doi = dout + row * head_dim;
                    for (int t = t0; t < t1; t++) {
                        const int64_t off = (int64_t)t * kv_stride + kvh * head_dim;
                        const float s = dot(qi, k + off) * scale;
                        const float p = std::exp(s - lse[row]), ds = p * (dot(doi, v + off) - dsum[row]);
                        const float c = ds * scale;
                        float *dkt = dk + off, *dvt = dv + off;
#pragma omp simd
                        for (int j = 0; j < head_dim; j++) {
                            dkt[j] += c * qi[j];
                            dvt[j] += p * doi[j];
                        }
                    }
                }
            }
        }
    }
}
