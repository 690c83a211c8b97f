// Causal softmax of a score matrix into bf16 probabilities: the step between the two GEMMs of the CUDA
// backend's bf16 attention (see skipgpt.h). One block per (query row, head); three passes over the row (max,
// sum, write), the row's 4 t bytes staying in L1/L2 between them.
#include "common.cuh"
#include "skipgpt.h"

namespace {

constexpr int kThreads = 256;

// s, p: [heads, rows, t]; block (r, h) owns row r of head h; keys past pos[r] get probability 0.
__global__ void attention_probs_kernel(uint16_t *__restrict__ p, const float *__restrict__ s,
                                       const int32_t *__restrict__ pos, int rows, int t) {
    const int64_t row = (int64_t)blockIdx.y * rows + blockIdx.x;
    const float *sr = s + row * t;
    uint16_t *pr = p + row * t;
    const int len = pos[blockIdx.x] + 1;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < len; j += blockDim.x) mx = fmaxf(mx, sr[j]);
    mx = sg::block_max(mx);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < len; j += blockDim.x) sum += __expf(sr[j] - mx);
    const float inv = 1.0f / sg::block_sum(sum);
    for (int j = threadIdx.x; j < t; j += blockDim.x) pr[j] = j < len ? sg::bf16_bits(__expf(sr[j] - mx) * inv) : 0;
}

}  // namespace

void sg_cuda_attention_probs_bf16(uint16_t *p, const float *s, const int32_t *pos, int rows, int heads, int t,
                                  void *stream) {
    if (rows <= 0 || heads <= 0 || t <= 0) return;
    attention_probs_kernel<<<dim3(rows, heads), kThreads, 0, (cudaStream_t)stream>>>(p, s, pos, rows, t);
}
