// Backward of causal grouped-query attention (CUDA twin of native/cpu/attention_backward.cpp): a plain,
// correct kernel, not a tuned one. One block per (query, head) row recomputes the row's softmax from q and k
// and adds its share of dk and dv with atomicAdd, since every query and every head of a kv head's group that
// sees key t feeds the same dk/dv row.
#include "common.cuh"
#include "skipgpt.h"

#include <cmath>

namespace {

constexpr int kWarps = 4;  // warp w of a block takes keys w, w + kWarps, ...

// dout, q, dq[n, H*hd]; k, v, dk, dv[t, Hkv*hd]. For the block's row (query i, head h), keys t <= pos[i]:
//   s_t = q.k_t * scale, P_t = exp(s_t - lse), dP_t = dout.v_t, D = sum_t P_t dP_t, dS_t = P_t (dP_t - D)
//   dq = scale * sum_t dS_t k_t (written);  dk_t += scale * dS_t q;  dv_t += P_t dout.
// Pass 1 gives lse and D: each warp keeps an online (max m, sum l, sum of e^(s-m) dP) over its keys, and the
// warps' triples are merged. Pass 2 recomputes s and dP per key, adds into dk and dv, and sums dq per warp in
// shared memory. Shared memory: q and dout of the row, then kWarps partial dq rows: (2 + kWarps) * hd floats.
__global__ void attention_backward_kernel(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                          const float *k, const float *v, const int32_t *pos, int n_heads,
                                          int n_kv_heads, int head_dim, float scale) {
    extern __shared__ float smem[];
    float *qs = smem, *dos = qs + head_dim, *dq_part = dos + head_dim;  // dq_part[kWarps][head_dim]
    __shared__ float warp_m[kWarps], warp_l[kWarps], warp_d[kWarps];
    const int64_t row = blockIdx.x;  // = i * n_heads + h, the row of q, dout and dq
    const int i = (int)(row / n_heads), h = (int)(row % n_heads), kvh = h / (n_heads / n_kv_heads);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t kv_stride = (int64_t)n_kv_heads * head_dim;
    const float *kh = k + kvh * head_dim, *vh = v + kvh * head_dim;
    float *dkh = dk + kvh * head_dim, *dvh = dv + kvh * head_dim;
    for (int c = threadIdx.x; c < head_dim; c += blockDim.x) {
        qs[c] = q[row * head_dim + c];
        dos[c] = dout[row * head_dim + c];
    }
    for (int c = threadIdx.x; c < kWarps * head_dim; c += blockDim.x) dq_part[c] = 0.0f;
    __syncthreads();
    const int len = pos[i] + 1;

    float m = -INFINITY, l = 0.0f, d = 0.0f;
    for (int t = warp; t < len; t += kWarps) {
        const float *kt = kh + t * kv_stride, *vt = vh + t * kv_stride;
        float s = 0.0f, dp = 0.0f;
        for (int c = lane; c < head_dim; c += 32) {
            s += qs[c] * kt[c];
            dp += dos[c] * vt[c];
        }
        s = sg::warp_sum(s) * scale;
        dp = sg::warp_sum(dp);
        const float m_new = fmaxf(m, s), corr = __expf(m - m_new), p = __expf(s - m_new);  // corr = 0 at first
        l = l * corr + p;
        d = d * corr + p * dp;
        m = m_new;
    }
    if (lane == 0) {
        warp_m[warp] = m;
        warp_l[warp] = l;
        warp_d[warp] = d;
    }
    __syncthreads();
    // A warp that saw no key (len < kWarps) has m = -inf and weighs 0; warp 0 always sees key 0.
    float mx = -INFINITY, sum_l = 0.0f, sum_d = 0.0f;
    for (int w = 0; w < kWarps; w++) mx = fmaxf(mx, warp_m[w]);
    for (int w = 0; w < kWarps; w++) {
        const float f = __expf(warp_m[w] - mx);
        sum_l += warp_l[w] * f;
        sum_d += warp_d[w] * f;
    }
    const float lse = mx + __logf(sum_l), dsum = sum_d / sum_l;

    float *dqw = dq_part + warp * head_dim;  // lane c of the warp owns columns c, c + 32, ...: no races
    for (int t = warp; t < len; t += kWarps) {
        const float *kt = kh + t * kv_stride, *vt = vh + t * kv_stride;
        float s = 0.0f, dp = 0.0f;
        for (int c = lane; c < head_dim; c += 32) {
            s += qs[c] * kt[c];
            dp += dos[c] * vt[c];
        }
        s = sg::warp_sum(s) * scale;
        dp = sg::warp_sum(dp);
        const float p = __expf(s - lse), ds = p * (dp - dsum) * scale;
        float *dkt = dkh + t * kv_stride, *dvt = dvh + t * kv_stride;
        for (int c = lane; c < head_dim; c += 32) {
            dqw[c] += ds * kt[c];
            atomicAdd(dkt + c, ds * qs[c]);
            atomicAdd(dvt + c, p * dos[c]);
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < head_dim; c += blockDim.x) {
        float acc = 0.0f;
        for (int w = 0; w < kWarps; w++) acc += dq_part[w * head_dim + c];
        dq[row * head_dim + c] = acc;
    }
}

}  // namespace

void sg_cuda_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                                const float *v, const int32_t *pos, int n, int n_heads, int n_kv_heads,
                                int head_dim, void *stream) {
    if (n <= 0 || n_heads <= 0 || head_dim <= 0) return;
    const size_t smem = sizeof(float) * (2 + kWarps) * head_dim;  // <= 48 KB: head_dim <= 2048
    attention_backward_kernel<<<(unsigned)((int64_t)n * n_heads), 32 * kWarps, smem, (cudaStream_t)stream>>>(
        dq, dk, dv, dout, q, k, v, pos, n_heads, n_kv_heads, head_dim, (float)(1.0 / std::sqrt((double)head_dim)));
}
