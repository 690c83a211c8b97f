// Row-wise normalisations: RMSNorm and softmax (CUDA twins of native/cpu/norm.cpp). One block per row.
#include "common.cuh"
#include "skipgpt.h"

namespace {

// out[n, d] = x / sqrt(mean(x^2) + eps) * w[d]; T = float4 when d % 4 == 0 and the pointers are aligned,
// units = d / (floats per T). out may alias x: a row is fully read before any of it is written.
template <typename T>
__global__ void rmsnorm_kernel(float *out, const float *x, const float *w, int units, int d, float eps) {
    const int64_t row = blockIdx.x;
    const T *xr = reinterpret_cast<const T *>(x + row * d);
    const T *wt = reinterpret_cast<const T *>(w);
    T *orow = reinterpret_cast<T *>(out + row * d);
    float ss = 0.0f;
    for (int c = threadIdx.x; c < units; c += blockDim.x) {
        T v = xr[c];
        if constexpr (sizeof(T) == 16) ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        else ss += v * v;
    }
    const float scale = rsqrtf(sg::block_sum(ss) / d + eps);
    for (int c = threadIdx.x; c < units; c += blockDim.x) {
        T v = xr[c], g = wt[c];
        if constexpr (sizeof(T) == 16) {
            v.x *= scale * g.x; v.y *= scale * g.y; v.z *= scale * g.z; v.w *= scale * g.w;
        } else {
            v *= scale * g;
        }
        orow[c] = v;
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
    if (d % 4 == 0 && sg::aligned16(out) && sg::aligned16(x) && sg::aligned16(w))
        rmsnorm_kernel<float4><<<n, sg::row_threads(d / 4), 0, s>>>(out, x, w, d / 4, d, eps);
    else
        rmsnorm_kernel<float><<<n, sg::row_threads(d), 0, s>>>(out, x, w, d, d, eps);
}

void sg_cuda_softmax(float *x, int n, int d, void *stream) {
    if (n <= 0 || d <= 0) return;
    softmax_kernel<<<n, sg::row_threads(d), 0, (cudaStream_t)stream>>>(x, d);
}
