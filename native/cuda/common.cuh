// Small device helpers shared by the CUDA kernels: warp and block reductions, launch sizing.
#ifndef SKIPGPT_CUDA_COMMON_CUH
#define SKIPGPT_CUDA_COMMON_CUH

#include <cstdint>
#include <cuda_runtime.h>

namespace sg {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
    return v;
}

__device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, off));
    return v;
}

// Sum / max over the whole block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
// Every thread of the block must call it.
template <bool kMax>
__device__ __forceinline__ float block_reduce(float v) {
    __shared__ float part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = kMax ? warp_max(v) : warp_sum(v);
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < n_warps ? part[lane] : (kMax ? -INFINITY : 0.0f);
        v = kMax ? warp_max(v) : warp_sum(v);
        if (lane == 0) part[0] = v;
    }
    __syncthreads();
    v = part[0];
    __syncthreads();  // part[] is free again for the next call
    return v;
}

__device__ __forceinline__ float block_sum(float v) { return block_reduce<false>(v); }
__device__ __forceinline__ float block_max(float v) { return block_reduce<true>(v); }

// One thread per element: blocks of kElementThreads, enough of them to cover len elements.
constexpr int kElementThreads = 256;
inline unsigned element_blocks(int64_t len) { return (unsigned)((len + kElementThreads - 1) / kElementThreads); }

// Threads for a block that strides over `units` items of one row: a multiple of 32, at most 256.
inline int row_threads(int units) {
    int t = (units + 31) / 32 * 32;
    return t < 32 ? 32 : (t > 256 ? 256 : t);
}

inline bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

// x rounded to bf16 bits, to nearest even: adding 0x7FFF, plus 1 when the kept half is odd, carries into the kept
// half exactly when the dropped half is above the midpoint, or at it with an odd kept half; a carry out of the
// mantissa bumps the exponent, which is right (the largest finite values round up to inf). Integer arithmetic,
// so --use_fast_math's flush-to-zero cannot touch subnormals.
__device__ __forceinline__ uint16_t bf16_bits(float x) {
    uint32_t bits = __float_as_uint(x);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x0040u);  // NaN: quiet, never inf
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace sg

#endif
