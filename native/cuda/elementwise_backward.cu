// Backward of SwiGLU (CUDA twin of native/cpu/elementwise_backward.cpp).
#include "common.cuh"
#include "skipgpt.h"

namespace {

// len elements; sigma = 1 / (1 + e^-g): dgate = dout * up * sigma * (1 + g (1 - sigma)), dup = dout * g * sigma.
// Inputs are read before outputs are written, so an output may alias an input exactly (hence no __restrict__).
__global__ void swiglu_backward_kernel(float *dgate, float *dup, const float *dout, const float *gate,
                                       const float *up, int64_t len) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= len) return;
    const float g = gate[i], u = up[i], dy = dout[i];
    const float sig = 1.0f / (1.0f + __expf(-g));
    dgate[i] = dy * u * sig * (1.0f + g * (1.0f - sig));
    dup[i] = dy * g * sig;
}

}  // namespace

void sg_cuda_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                             int64_t len, void *stream) {
    if (len <= 0) return;
    swiglu_backward_kernel<<<sg::element_blocks(len), sg::kElementThreads, 0, (cudaStream_t)stream>>>(
        dgate, dup, dout, gate, up, len);
}
