// Row movement: embedding lookup, gather of routed rows, scatter-add back into the residual, scatter of new
// keys and values into the caches of a batch (CUDA twins of native/cpu/rows.cpp). One block per moved row; T = float4 when the row length is a multiple
// of 4 and the pointers are 16-byte aligned, so each thread moves 16 bytes per access.
#include "common.cuh"
#include "skipgpt.h"

namespace {

// out[out_idx[i], :] = src[src_idx[i], :] for i < count (units = d / floats per T); a null index list stands
// for 0, 1, 2, ...: gather passes out_idx = null, scatter src_idx = null.
template <typename T>
__global__ void copy_rows_kernel(T *__restrict__ out, const T *__restrict__ src, const int32_t *__restrict__ out_idx,
                                 const int32_t *__restrict__ src_idx, int units) {
    const int64_t i = blockIdx.x;
    const T *s = src + (src_idx ? src_idx[i] : i) * units;
    T *o = out + (out_idx ? out_idx[i] : i) * units;
#pragma unroll 4
    for (int c = threadIdx.x; c < units; c += blockDim.x) o[c] = s[c];
}

__device__ __forceinline__ float4 operator+(float4 a, float4 b) {
    return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

// dst[idx[i], :] += src[i, :]; indices are distinct, so no two blocks touch one row
template <typename T>
__global__ void scatter_add_rows_kernel(T *__restrict__ dst, const T *__restrict__ src,
                                        const int32_t *__restrict__ idx, int units) {
    T *dr = dst + (int64_t)idx[blockIdx.x] * units;
    const T *s = src + (int64_t)blockIdx.x * units;
#pragma unroll 4
    for (int c = threadIdx.x; c < units; c += blockDim.x) dr[c] = dr[c] + s[c];
}

void copy_rows(float *out, const float *src, const int32_t *out_idx, const int32_t *src_idx, int count, int d,
               cudaStream_t s) {
    if (count <= 0 || d <= 0) return;
    if (d % 4 == 0 && sg::aligned16(out) && sg::aligned16(src))
        copy_rows_kernel<float4><<<count, sg::row_threads(d / 4), 0, s>>>(
            reinterpret_cast<float4 *>(out), reinterpret_cast<const float4 *>(src), out_idx, src_idx, d / 4);
    else
        copy_rows_kernel<float><<<count, sg::row_threads(d), 0, s>>>(out, src, out_idx, src_idx, d);
}

}  // namespace

void sg_cuda_embedding(float *out, const float *table, const int32_t *ids, int n, int d, void *stream) {
    copy_rows(out, table, nullptr, ids, n, d, (cudaStream_t)stream);
}

void sg_cuda_gather_rows(float *out, const float *src, const int32_t *idx, int count, int d, void *stream) {
    copy_rows(out, src, nullptr, idx, count, d, (cudaStream_t)stream);
}

void sg_cuda_scatter_add_rows(float *dst, const float *src, const int32_t *idx, int count, int d, void *stream) {
    if (count <= 0 || d <= 0) return;
    cudaStream_t s = (cudaStream_t)stream;
    if (d % 4 == 0 && sg::aligned16(dst) && sg::aligned16(src))
        scatter_add_rows_kernel<float4><<<count, sg::row_threads(d / 4), 0, s>>>(
            reinterpret_cast<float4 *>(dst), reinterpret_cast<const float4 *>(src), idx, d / 4);
    else
        scatter_add_rows_kernel<float><<<count, sg::row_threads(d), 0, s>>>(dst, src, idx, d);
}

void sg_cuda_scatter_rows(float *dst, const float *src, const int32_t *idx, int count, int d, void *stream) {
    copy_rows(dst, src, idx, nullptr, count, d, (cudaStream_t)stream);
}
