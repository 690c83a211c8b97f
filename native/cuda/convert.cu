// fp32 -> bf16 rounding for the CUDA backend's bf16 GEMM path (see skipgpt.h; no CPU twin).
#include "skipgpt.h"
#include <cuda_runtime.h>

namespace {
constexpr int kThreads = 256;

// Round to nearest even on the bits: adding 0x7FFF, plus 1 when the kept half is odd, carries into the kept
// half exactly when the dropped half is above the midpoint, or at it with an odd kept half; a carry out of the
// mantissa bumps the exponent, which is right (the largest finite values round up to inf). Integer arithmetic,
// so --use_fast_math's flush-to-zero cannot touch subnormals.
__device__ __forceinline__ uint16_t bf16_bits(float x) {
    uint32_t bits = __float_as_uint(x);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x0040u);  // NaN: quiet, never inf
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// out[len] = bf16(x[len]); one element per thread: the copy is bandwidth-bound, and views may start anywhere
__global__ void f32_to_bf16_kernel(uint16_t *__restrict__ out, const float *__restrict__ x, int64_t len) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < len) out[i] = bf16_bits(x[i]);
}
}  // namespace

void sg_cuda_f32_to_bf16(uint16_t *out, const float *x, int64_t len, void *stream) {
    if (len <= 0) return;
    f32_to_bf16_kernel<<<(unsigned)((len + kThreads - 1) / kThreads), kThreads, 0, (cudaStream_t)stream>>>(out, x, len);
}
