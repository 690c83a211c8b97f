// Cross-entropy per row (CUDA twin of native/cpu/loss.cpp). One block per row.
#include "common.cuh"
#include "skipgpt.h"

namespace {

// loss[i] = logsumexp(logits[i, :]) - logits[i, targets[i]], logits[n, vocab]
__global__ void cross_entropy_kernel(float *loss, const float *logits, const int32_t *targets, int vocab) {
    const float *lr = logits + (int64_t)blockIdx.x * vocab;
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) mx = fmaxf(mx, lr[c]);
    mx = sg::block_max(mx);
    float sum = 0.0f;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) sum += __expf(lr[c] - mx);
    sum = sg::block_sum(sum);
    if (threadIdx.x == 0) loss[blockIdx.x] = __logf(sum) + mx - lr[targets[blockIdx.x]];
}

}  // namespace

void sg_cuda_cross_entropy(float *loss, const float *logits, const int32_t *targets, int n, int vocab,
                           void *stream) {
    if (n <= 0 || vocab <= 0) return;
    cross_entropy_kernel<<<n, sg::row_threads(vocab), 0, (cudaStream_t)stream>>>(loss, logits, targets, vocab);
}
