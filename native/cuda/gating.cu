// Masked-dense gating (CUDA twins of native/cpu/gating.cpp).
#include "common.cuh"
#include "skipgpt.h"

namespace {

// out[n] = sum_j a[i, j] * b[i, j]; one block per row
__global__ void row_dot_kernel(float *out, const float *a, const float *b, int d) {
    const int64_t off = (int64_t)blockIdx.x * d;
    float sum = 0.0f;
    for (int c = threadIdx.x; c < d; c += blockDim.x) sum += a[off + c] * b[off + c];
    sum = sg::block_sum(sum);
    if (threadIdx.x == 0) out[blockIdx.x] = sum;
}

// x[n, d] row i *= s[i]; one thread per element
__global__ void scale_rows_kernel(float *x, const float *s, int d, int64_t len) {
    const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e < len) x[e] *= s[e / d];
}

}  // namespace

void sg_cuda_row_dot(float *out, const float *a, const float *b, int n, int d, void *stream) {
    if (n <= 0) return;
    row_dot_kernel<<<n, sg::row_threads(d), 0, (cudaStream_t)stream>>>(out, a, b, d);
}

void sg_cuda_scale_rows(float *x, const float *s, int n, int d, void *stream) {
    const int64_t len = (int64_t)n * d;
    if (len <= 0) return;
    scale_rows_kernel<<<sg::element_blocks(len), sg::kElementThreads, 0, (cudaStream_t)stream>>>(x, s, d, len);
}
