// Causal grouped-query attention over a KV cache (see skipgpt.h for the contract).
#include "skipgpt.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace {
// A task is kQueryBlock queries of one head; keys are visited in tiles of kKeyTile, so each K/V tile
// (kKeyTile * head_dim floats, 32 KB at head_dim 128) is read from memory once and reused by every query of
// the block while it sits in L1/L2. An online softmax (running max m, sum l, unnormalised output) lets a
// query consume one tile at a time.
constexpr int kQueryBlock = 16;
constexpr int kKeyTile = 64;
}  // namespace

// q[n, H*hd], k/v[t, Hkv*hd], out[n, H*hd]; query i attends cache rows kv_start[i] + 0..pos[i].
void sg_cpu_attention(float *out, const float *q, const float *k, const float *v, const int32_t *pos,
                      const int32_t *kv_start, int n, int n_heads, int n_kv_heads, int head_dim) {
    const int group = n_heads / n_kv_heads;
    const int q_stride = n_heads * head_dim, kv_stride = n_kv_heads * head_dim;
    const float scale = 1.0f / std::sqrt((float)head_dim);
    const int n_blocks = (n + kQueryBlock - 1) / kQueryBlock;
#pragma omp parallel
    {
        std::vector<float> acc((size_t)kQueryBlock * head_dim);  // [kQueryBlock, hd] unnormalised outputs
        float scores[kKeyTile], m[kQueryBlock], l[kQueryBlock];
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int rb = 0; rb < n_blocks; rb++) {
            for (int h = 0; h < n_heads; h++) {
                // Last block first: with ascending positions it is the longest, and starting it early
                // shortens the tail of the parallel loop.
                const int i0 = (n_blocks - 1 - rb) * kQueryBlock, i1 = std::min(n, i0 + kQueryBlock);
                const int kvh = h / group;
                int len_max = 0;
                for (int i = i0; i < i1; i++) len_max = std::max(len_max, pos[i] + 1);
                std::fill(acc.begin(), acc.end(), 0.0f);
                std::fill(m, m + kQueryBlock, -INFINITY);
                std::fill(l, l + kQueryBlock, 0.0f);
                for (int t0 = 0; t0 < len_max; t0 += kKeyTile) {
                    for (int i = i0; i < i1; i++) {
                        const int t1 = std::min(t0 + kKeyTile, pos[i] + 1);
                        if (t1 <= t0) continue;
                        const int r = i - i0;
                        const float *qi = q + (int64_t)i * q_stride + h * head_dim;
                        // Query i's cache: its own rows when several sequences share k and v.
                        const int64_t first = kv_start ? kv_start[i] : 0;
                        const float *ki = k + first * kv_stride + kvh * head_dim;
                        const float *vi = v + first * kv_stride + kvh * head_dim;
                        float tile_max = -INFINITY;
                        for (int t = t0; t < t1; t++) {
                            const float *kt = ki + (int64_t)t * kv_stride;
                            float s = 0.0f;
#pragma omp simd reduction(+ : s)
                            for (int j = 0; j < head_dim; j++) s += qi[j] * kt[j];
                            s *= scale;
                            scores[t - t0] = s;
                            tile_max = std::max(tile_max, s);
                        }
                        const float m_new = std::max(m[r], tile_max);
                        const float corr = std::exp(m[r] - m_new);  // 0 on the first tile (m = -inf)
                        float *ar = acc.data() + (size_t)r * head_dim;
                        l[r] *= corr;
#pragma omp simd
                        for (int j = 0; j < head_dim; j++) ar[j] *= corr;
                        for (int t = t0; t < t1; t++) {
                            const float *vt = vi + (int64_t)t * kv_stride;
                            const float p = std::exp(scores[t - t0] - m_new);
                            l[r] += p;
#pragma omp simd
                            for (int j = 0; j < head_dim; j++) ar[j] += p * vt[j];
                        }
                        m[r] = m_new;
                    }
                }
                for (int i = i0; i < i1; i++) {
                    const int r = i - i0;
                    const float inv = 1.0f / l[r];
                    const float *ar = acc.data() + (size_t)r * head_dim;
                    float *oi = out + (int64_t)i * q_stride + h * head_dim;
#pragma omp simd
                    for (int j = 0; j < head_dim; j++) oi[j] = ar[j] * inv;
                }
            }
        }
    }
}
