// Backward of the per-row cross-entropy (CUDA twin of native/cpu/loss_backward.cpp). One block per row.
#include "common.cuh"
#include "skipgpt.h"

namespace {

// dlogits[i, j] = scale * c_i * (softmax(logits[i])[j] - [j == targets[i]]), c_i = dloss[i] or 1. The row's
// max and sum are reduced (block-wide, with barriers) before any element is written, so dlogits may be logits.
__global__ void cross_entropy_backward_kernel(float *dlogits, const float *logits, const int32_t *targets,
                                              const float *dloss, float scale, int vocab) {
    const int64_t off = (int64_t)blockIdx.x * vocab;
    const float *lr = logits + off;
    float *dr = dlogits + off;
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) mx = fmaxf(mx, lr[c]);
    mx = sg::block_max(mx);
    float sum = 0.0f;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) sum += __expf(lr[c] - mx);
    sum = sg::block_sum(sum);
    const float coef = scale * (dloss ? dloss[blockIdx.x] : 1.0f), coef_over_sum = coef / sum;
    const int target = targets[blockIdx.x];
    for (int c = threadIdx.x; c < vocab; c += blockDim.x)
        dr[c] = __expf(lr[c] - mx) * coef_over_sum - (c == target ? coef : 0.0f);
}

}  // namespace

void sg_cuda_cross_entropy_backward(float *dlogits, const float *logits, const int32_t *targets,
                                    const float *dloss, float scale, int n, int vocab, void *stream) {
    if (n <= 0 || vocab <= 0) return;
    cross_entropy_backward_kernel<<<n, sg::row_threads(vocab), 0, (cudaStream_t)stream>>>(dlogits, logits, targets,
                                                                                         dloss, scale, vocab);
}
