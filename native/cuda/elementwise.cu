// Elementwise kernels: residual add and SwiGLU (CUDA twins of native/cpu/elementwise.cpp).
#include "common.cuh"
#include "skipgpt.h"

namespace {
// dst[len] += src[len]
__global__ void add_kernel(float *dst, const float *src, int64_t len) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) dst[i] += src[i];
}

// out[len] = silu(gate) * up
__global__ void swiglu_kernel(float *out, const float *gate, const float *up, int64_t len) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) {
        float g = gate[i];
        out[i] = g / (1.0f + __expf(-g)) * up[i];
    }
}
}  // namespace

void sg_cuda_add(float *dst, const float *src, int64_t len, void *stream) {
    if (len <= 0) return;
    add_kernel<<<sg::element_blocks(len), sg::kElementThreads, 0, (cudaStream_t)stream>>>(dst, src, len);
}

void sg_cuda_swiglu(float *out, const float *gate, const float *up, int64_t len, void *stream) {
    if (len <= 0) return;
    swiglu_kernel<<<sg::element_blocks(len), sg::kElementThreads, 0, (cudaStream_t)stream>>>(out, gate, up, len);
}
