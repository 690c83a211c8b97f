// Row-wise normalisations: RMSNorm and softmax (CUDA twins of native/cpu/norm.cpp). One block per row.
#include "common.cuh"
#include "skipgpt.h"

namespace {

__device__ __forceinline__ float sum_sq(float v) { return v * v; }
__device__ __forceinline__ float sum_sq(float4 v) { return v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w; }
__device__ __forceinline__ float scaled(float v, float s, float g) { return v * s * g; }
__device__ __forceinline__ float4 scaled(float4 v, float s, float4 g) {
    return make_float4(v.x * s * g.x, v.y * s * g.y, v.z * s * g.z, v.w * s * g.w);
}

// out[n, d] = x / sqrt(mean(x^2) + eps) * w[d]; T = float4 when d % 4 == 0 and the pointers are aligned,
// units = d / (floats per T). With kCached > 0 (rows of at most kCached * blockDim.x units) each thread keeps
// its part of the row in registers between the sum and the scaling, so x is read from memory once; longer
// rows are read twice. out may alias x: a row is fully read before any of it is written.
template <typename T, int kCached>
__global__ void rmsnorm_kernel(float *out, const float *x, const float *w, int units, int d, float eps) {
    const int64_t row = blockIdx.x;
    const T *xr = reinterpret_cast<const T *>(x + row * d);
    const T *wt = reinterpret_cast<const T *>(w);
    T *orow = reinterpret_cast<T *>(out + row * d);
    float ss = 0.0f;
    if constexpr (kCached > 0) {
        T v[kCached];
#pragma unroll
        for (int p = 0; p < kCached; p++) {
            const int c = threadIdx.x + p * blockDim.x;
            if (c < units) {
                v[p] = xr[c];
                ss += sum_sq(v[p]);
            }
        }
        const float scale = rsqrtf(sg::block_sum(ss) / d + eps);
#pragma unroll
        for (int p = 0; p < kCached; p++) {
            const int c = threadIdx.x + p * blockDim.x;
            if (c < units) orow[c] = scaled(v[p], scale, wt[c]);
        }
    } else {
        for (int c = threadIdx.x; c < units; c += blockDim.x) ss += sum_sq(xr[c]);
        const float scale = rsqrtf(sg::block_sum(ss) / d + eps);
        for (int c = threadIdx.x; c < units; c += blockDim.x) orow[c] = scaled(xr[c], scale, wt[c]);
    }
}

// x[n, d] <- exp(x - max) / sum, in place: one pass for the max, one for the sum, one to write.
__global__ void softmax_kernel(float *x, int d) {
    float *xr = x + (int64_t)blockIdx.x * d;
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < d; c += blockDim.x) mx = fmaxf(mx, xr[c]);
    mx = sg::block_max(mx);
    float sum = 0.0f;
    for (int c = threadIdx.x; c < d; c += blockDim.x) sum += __expf(xr[c] - mx);
    const float inv = 1.0f / sg::block_sum(sum);
    for (int c = threadIdx.x; c < d; c += blockDim.x) xr[c] = __expf(xr[c] - mx) * inv;
}

}  // namespace

void sg_cuda_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps, void *stream) {
    if (n <= 0 || d <= 0) return;
    cudaStream_t s = (cudaStream_t)stream;
    constexpr int kCached = 8;  // units per thread held in registers: rows up to 8 * 256 units
    const bool vec4 = d % 4 == 0 && sg::aligned16(out) && sg::aligned16(x) && sg::aligned16(w);
    const int units = vec4 ? d / 4 : d, threads = sg::row_threads(units);
    const bool cached = units <= kCached * threads;
    if (vec4 && cached) rmsnorm_kernel<float4, kCached><<<n, threads, 0, s>>>(out, x, w, units, d, eps);
    else if (vec4) rmsnorm_kernel<float4, 0><<<n, threads, 0, s>>>(out, x, w, units, d, eps);
    else if (cached) rmsnorm_kernel<float, kCached><<<n, threads, 0, s>>>(out, x, w, units, d, eps);
    else rmsnorm_kernel<float, 0><<<n, threads, 0, s>>>(out, x, w, units, d, eps);
}

void sg_cuda_softmax(float *x, int n, int d, void *stream) {
    if (n <= 0 || d <= 0) return;
    softmax_kernel<<<n, sg::row_threads(d), 0, (cudaStream_t)stream>>>(x, d);
}
