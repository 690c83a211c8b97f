// fp32 -> bf16 rounding for the CUDA backend's bf16 GEMM path (see skipgpt.h; no CPU twin).
#include "common.cuh"
#include "skipgpt.h"

namespace {

// out[len] = bf16(x[len]); one element per thread: the copy is bandwidth-bound, and views may start anywhere
__global__ void f32_to_bf16_kernel(uint16_t *__restrict__ out, const float *__restrict__ x, int64_t len) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) out[i] = sg::bf16_bits(x[i]);
}
}  // namespace

void sg_cuda_f32_to_bf16(uint16_t *out, const float *x, int64_t len, void *stream) {
    if (len <= 0) return;
    f32_to_bf16_kernel<<<sg::element_blocks(len), sg::kElementThreads, 0, (cudaStream_t)stream>>>(out, x, len);
}
