// LoRA (CUDA twins of native/cpu/lora.cpp): the low-rank term scale * B (A x) of an adapted projection.
#include "common.cuh"
#include "skipgpt.h"

namespace {

constexpr int kRows = 16;      // rows per block; the block's [kRows, r] intermediates live in shared memory
constexpr int kThreads = 256;
constexpr int kMinColumns = 256;  // a forward block's slice of the m outputs is at least this wide

// grid (row blocks, column slices). u[rows, r] = scale * x A^T in shared memory (one warp per (i, t) dot
// product of length k, coalesced over k), then out[i, j] += B_j . u_i for this block's slice of j.
__global__ void lora_forward_kernel(float *__restrict__ out, const float *__restrict__ x, const float *__restrict__ a,
                                    const float *__restrict__ b, int n, int k, int m, int r, float scale) {
    extern __shared__ float u[];  // [rows, r]
    const int i0 = blockIdx.x * kRows, rows = min(kRows, n - i0);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int e = warp; e < rows * r; e += warps) {
        const int i = e / r, t = e % r;
        const float *xi = x + (int64_t)(i0 + i) * k, *at = a + (int64_t)t * k;
        float s = 0.0f;
        for (int p = lane; p < k; p += 32) s += xi[p] * at[p];
        s = sg::warp_sum(s);
        if (lane == 0) u[e] = scale * s;
    }
    __syncthreads();
    const int slice = (m + gridDim.y - 1) / gridDim.y, j0 = blockIdx.y * slice, cols = min(m, j0 + slice) - j0;
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int i = e / cols, j = j0 + e % cols;
        const float *bj = b + (int64_t)j * r, *ui = u + i * r;
        float s = 0.0f;
        for (int t = 0; t < r; t++) s += bj[t] * ui[t];
        out[(int64_t)(i0 + i) * m + j] += s;
    }
}

// One block per kRows rows. u[rows, r] = x A^T and g[rows, r] = scale * dy B in shared memory; then
// dx[i, :] += g_i A (rows owned by this block), and the block's share of db = scale * dy^T u and da = g^T x,
// added with atomicAdd (every block adds into all of da and db).
__global__ void lora_backward_kernel(float *__restrict__ dx, float *__restrict__ da, float *__restrict__ db,
                                     const float *__restrict__ dy, const float *__restrict__ x,
                                     const float *__restrict__ a, const float *__restrict__ b, int n, int k, int m,
                                     int r, float scale) {
    extern __shared__ float sh[];
    float *u = sh, *g = sh + kRows * r;  // [rows, r] each
    const int i0 = blockIdx.x * kRows, rows = min(kRows, n - i0);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (int e = warp; e < rows * r; e += warps) {
        const int i = e / r, t = e % r;
        const float *xi = x + (int64_t)(i0 + i) * k, *at = a + (int64_t)t * k, *dyi = dy + (int64_t)(i0 + i) * m;
        float su = 0.0f, sdy = 0.0f;
        for (int p = lane; p < k; p += 32) su += xi[p] * at[p];
        for (int j = lane; j < m; j += 32) sdy += dyi[j] * b[(int64_t)j * r + t];
        su = sg::warp_sum(su);
        sdy = sg::warp_sum(sdy);
        if (lane == 0) {
            u[e] = su;
            g[e] = scale * sdy;
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < rows * k; e += blockDim.x) {
        const int i = e / k, p = e % k;
        const float *gi = g + i * r;
        float s = 0.0f;
        for (int t = 0; t < r; t++) s += gi[t] * a[(int64_t)t * k + p];
        dx[(int64_t)(i0 + i) * k + p] += s;
    }
    for (int e = threadIdx.x; e < m * r; e += blockDim.x) {
        const int j = e / r, t = e % r;
        float s = 0.0f;
        for (int i = 0; i < rows; i++) s += dy[(int64_t)(i0 + i) * m + j] * u[i * r + t];
        atomicAdd(db + e, scale * s);
    }
    for (int e = threadIdx.x; e < r * k; e += blockDim.x) {
        const int t = e / k, p = e % k;
        float s = 0.0f;
        for (int i = 0; i < rows; i++) s += g[i * r + t] * x[(int64_t)(i0 + i) * k + p];
        atomicAdd(da + e, s);
    }
}

}  // namespace

void sg_cuda_lora_forward(float *out, const float *x, const float *a, const float *b, int n, int k, int m, int r,
                          float scale, void *stream) {
    if (n <= 0 || m <= 0) return;
    const int row_blocks = (n + kRows - 1) / kRows;
    // Few row blocks (decode, small batches) would leave most multiprocessors idle: split the outputs too, each
    // slice recomputing its rows' u (r dot products of length k, cheap next to the slice's m/slices x r).
    int slices = 1;
    if (row_blocks < 64) slices = min(max(1, m / kMinColumns), 64 / row_blocks);
    const size_t smem = sizeof(float) * kRows * r;
    lora_forward_kernel<<<dim3(row_blocks, slices), kThreads, smem, (cudaStream_t)stream>>>(out, x, a, b, n, k, m, r,
                                                                                           scale);
}

void sg_cuda_lora_backward(float *dx, float *da, float *db, const float *dy, const float *x, const float *a,
                           const float *b, int n, int k, int m, int r, float scale, void *stream) {
    if (n <= 0) return;
    const int row_blocks = (n + kRows - 1) / kRows;
    const size_t smem = sizeof(float) * 2 * kRows * r;
    lora_backward_kernel<<<row_blocks, kThreads, smem, (cudaStream_t)stream>>>(dx, da, db, dy, x, a, b, n, k, m, r,
                                                                              scale);
}
