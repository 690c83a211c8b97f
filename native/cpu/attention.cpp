// Causal grouped-query attention over a KV cache (see skipgpt.h for the contract).
#include "skipgpt.h"
#include <cmath>
#include <vector>

// q[n, H*hd], k/v[t, Hkv*hd], out[n, H*hd]; query i attends keys 0..pos[i].
// One (query, head) per task; scores in a per-thread buffer sized by the longest prefix.
void sg_cpu_attention(float *out, const float *q, const float *k, const float *v, const int32_t *pos,
                      int n, int n_heads, int n_kv_heads, int head_dim) {
    const int group = n_heads / n_kv_heads;
    const int q_stride = n_heads * head_dim, kv_stride = n_kv_heads * head_dim;
    const float scale = 1.0f / std::sqrt((float)head_dim);
    int max_len = 0;
    for (int i = 0; i < n; i++) max_len = pos[i] + 1 > max_len ? pos[i] + 1 : max_len;
#pragma omp parallel
    {
        std::vector<float> scores(max_len);
#pragma omp for collapse(2) schedule(dynamic, 4)
        for (int i = 0; i < n; i++) {
            for (int h = 0; h < n_heads; h++) {
                const float *qi = q + (int64_t)i * q_stride + h * head_dim;
                const int kvh = h / group;
                const int len = pos[i] + 1;
                float mx = -INFINITY;
                for (int t = 0; t < len; t++) {
                    const float *kt = k + (int64_t)t * kv_stride + kvh * head_dim;
                    float s = 0.0f;
#pragma omp simd reduction(+ : s)
                    for (int j = 0; j < head_dim; j++) s += qi[j] * kt[j];
                    s *= scale;
                    scores[t] = s;
                    mx = s > mx ? s : mx;
                }
                float sum = 0.0f;
                for (int t = 0; t < len; t++) {
                    scores[t] = std::exp(scores[t] - mx);
                    sum += scores[t];
                }
                float inv = 1.0f / sum;
                float *oi = out + (int64_t)i * q_stride + h * head_dim;
                for (int j = 0; j < head_dim; j++) oi[j] = 0.0f;
                for (int t = 0; t < len; t++) {
                    const float *vt = v + (int64_t)t * kv_stride + kvh * head_dim;
                    float p = scores[t] * inv;
#pragma omp simd
                    for (int j = 0; j < head_dim; j++) oi[j] += p * vt[j];
                }
            }
        }
    }
}
